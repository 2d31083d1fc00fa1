<?php
// A document file encrypted or decrypted as OpenEMR's CryptoGen does it for the filesystem
// (encryptStandard/decryptStandard with keySource 'database', src/Common/Crypto/CryptoGen.php):
// "007" . base64(HMAC-SHA384(keyB, iv . ct) . iv . ct), ct = AES-256-CBC(keyA, iv, OPENSSL_RAW_DATA).
// Reads a JSON request on stdin: mode (encrypt|decrypt), key_a and key_b (the `keys` table values,
// base64 of the raw keys), in and out (file paths). Prints nothing on success.

declare(strict_types=1);

error_reporting(E_ALL);
set_error_handler(function (int $no, string $msg): bool {
    throw new ErrorException($msg, 0, $no);
});

function core_encrypt(string $value, string $secretKey, string $secretKeyHmac): string
{
    $iv = random_bytes(openssl_cipher_iv_length('aes-256-cbc'));
    $processedValue = openssl_encrypt($value, 'aes-256-cbc', $secretKey, OPENSSL_RAW_DATA, $iv);
    $hmacHash = hash_hmac('sha384', $iv . $processedValue, $secretKeyHmac, true);
    return '007' . base64_encode($hmacHash . $iv . $processedValue);
}

function core_decrypt(string $value, string $secretKey, string $secretKeyHmac): string
{
    if (substr($value, 0, 3) !== '007') {
        throw new RuntimeException('not a version 007 value');
    }
    $raw = base64_decode(substr($value, 3), true);
    if ($raw === false) {
        throw new RuntimeException('not base64');
    }
    $ivLength = openssl_cipher_iv_length('aes-256-cbc');
    $hmacHash = substr($raw, 0, 48);
    $iv = substr($raw, 48, $ivLength);
    $encryptedValue = substr($raw, 48 + $ivLength);
    $calculatedHmacHash = hash_hmac('sha384', $iv . $encryptedValue, $secretKeyHmac, true);
    if (!hash_equals($hmacHash, $calculatedHmacHash)) {
        throw new RuntimeException('HMAC does not verify');
    }
    $plain = openssl_decrypt($encryptedValue, 'aes-256-cbc', $secretKey, OPENSSL_RAW_DATA, $iv);
    if ($plain === false) {
        throw new RuntimeException('openssl_decrypt failed');
    }
    return $plain;
}

$request = json_decode(stream_get_contents(STDIN), true, 512, JSON_THROW_ON_ERROR);
$keyA = base64_decode($request['key_a'], true);
$keyB = base64_decode($request['key_b'], true);
$input = file_get_contents($request['in']);
$output = match ($request['mode']) {
    'encrypt' => core_encrypt($input, $keyA, $keyB),
    'decrypt' => core_decrypt($input, $keyA, $keyB),
};
file_put_contents($request['out'], $output);
