<?php

/**
 * Writes tests/vectors/cryptogen.json from real PHP output: OpenEMR CryptoGen "007" values for the
 * second-factor tests (the database keys, the drive key files they wrap, a TOTP secret encrypted
 * with the drive keys as `login_mfa_registrations.var1`) and RFC 6238 codes for that secret.
 * Run from the repository root: php scripts/gen-cryptogen-vectors.php
 *
 * CryptoGen normally draws a random IV; here it is fixed (0x05 x 16) and the keys are fixed
 * patterns, so every run writes the same file.
 */

declare(strict_types=1);

error_reporting(E_ALL);
set_error_handler(function (int $no, string $msg): bool {
    throw new ErrorException($msg, 0, $no);
});

const IV = "\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05\x05";

function must(bool $ok, string $what): void
{
    if (!$ok) {
        throw new RuntimeException("generator self-check failed: $what");
    }
}

// OpenEMR's CryptoGen::coreEncrypt (src/Common/Crypto/CryptoGen.php) without a custom password,
// with encryptStandard's version prefix: "007" . base64(HMAC-SHA384(b, iv . ct) . iv . ct).
function core_encrypt(string $value, string $secretKey, string $secretKeyHmac, string $iv = IV): string
{
    must(strlen($iv) === openssl_cipher_iv_length('aes-256-cbc'), 'IV length');
    $processedValue = openssl_encrypt($value, 'aes-256-cbc', $secretKey, OPENSSL_RAW_DATA, $iv);
    must($processedValue !== false, 'openssl_encrypt');
    $hmacHash = hash_hmac('sha384', $iv . $processedValue, $secretKeyHmac, true);
    return '007' . base64_encode($hmacHash . $iv . $processedValue);
}

// OpenEMR's CryptoGen::coreDecrypt for version 007, used to check what was written.
function core_decrypt(string $value, string $secretKey, string $secretKeyHmac): string
{
    must(substr($value, 0, 3) === '007', 'version prefix');
    $raw = base64_decode(substr($value, 3), true);
    $ivLength = openssl_cipher_iv_length('aes-256-cbc');
    $hmacHash = substr($raw, 0, 48);
    $iv = substr($raw, 48, $ivLength);
    $encryptedValue = substr($raw, 48 + $ivLength);
    $calculatedHmacHash = hash_hmac('sha384', $iv . $encryptedValue, $secretKeyHmac, true);
    must(hash_equals($hmacHash, $calculatedHmacHash), 'HMAC');
    $plain = openssl_decrypt($encryptedValue, 'aes-256-cbc', $secretKey, OPENSSL_RAW_DATA, $iv);
    must($plain !== false, 'openssl_decrypt');
    return $plain;
}

function base32_decode_rfc4648(string $s): string
{
    $alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
    $bits = '';
    foreach (str_split(rtrim(strtoupper($s), '=')) as $c) {
        $i = strpos($alphabet, $c);
        must($i !== false, 'base32 secret');
        $bits .= str_pad(decbin($i), 5, '0', STR_PAD_LEFT);
    }
    $out = '';
    foreach (str_split($bits, 8) as $byte) {
        if (strlen($byte) === 8) {
            $out .= chr(bindec($byte));
        }
    }
    return $out;
}

// RFC 6238 as OpenEMR's authenticator apps use it: HMAC-SHA1, 30-second steps, 6 digits.
function totp(string $base32Secret, int $unixTime): string
{
    $counter = pack('J', intdiv($unixTime, 30));
    $hash = hash_hmac('sha1', $counter, base32_decode_rfc4648($base32Secret), true);
    $offset = ord($hash[19]) & 0x0f;
    $binary = ((ord($hash[$offset]) & 0x7f) << 24) | (ord($hash[$offset + 1]) << 16)
        | (ord($hash[$offset + 2]) << 8) | ord($hash[$offset + 3]);
    return str_pad((string) ($binary % 1000000), 6, '0', STR_PAD_LEFT);
}

// RFC 6238's own SHA-1 vectors (8 digits there; the last 6 digits are the 6-digit code).
must(totp('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', 59) === '287082', 'RFC 6238 t=59');
must(totp('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', 1111111109) === '081804', 'RFC 6238 t=1111111109');

// The `keys` table holds base64 of 32 raw bytes per key (CryptoGen::collectCryptoKey, 'database').
$databaseKeys = ['sevena' => str_repeat("\x01", 32), 'sevenb' => str_repeat("\x02", 32)];
// The site's documents/logs_and_misc/methods/<label> files hold the drive keys, each encrypted
// with the database keys (collectCryptoKey, 'drive', versions four and later).
$driveKeys = ['sevena' => str_repeat("\x03", 32), 'sevenb' => str_repeat("\x04", 32)];
$files = [];
foreach ($driveKeys as $label => $key) {
    $files[$label] = core_encrypt($key, $databaseKeys['sevena'], $databaseKeys['sevenb']);
    must(core_decrypt($files[$label], $databaseKeys['sevena'], $databaseKeys['sevenb']) === $key, "file $label");
}
// login_mfa_registrations.var1 for TOTP: encryptStandard($secret) with the drive keys.
$secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
$var1 = core_encrypt($secret, $driveKeys['sevena'], $driveKeys['sevenb']);
must(core_decrypt($var1, $driveKeys['sevena'], $driveKeys['sevenb']) === $secret, 'var1');
must(strlen($var1) === 155, 'a 32-character secret encrypts to 155 characters');

$codes = [];
foreach ([1699999970, 1700000000, 1700000030] as $t) {
    $codes[] = ['time' => $t, 'code' => totp($secret, $t)];
}

$out = [
    'php_version' => PHP_VERSION,
    'generator' => 'scripts/gen-cryptogen-vectors.php',
    'iv_hex' => bin2hex(IV),
    'database_keys' => array_map('base64_encode', $databaseKeys),
    'drive_keys_hex' => array_map('bin2hex', $driveKeys),
    'drive_key_files' => $files,
    'totp_secret' => $secret,
    'totp_var1' => $var1,
    'totp_codes' => $codes,
];
$path = __DIR__ . '/../tests/vectors/cryptogen.json';
file_put_contents($path, json_encode($out, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES) . "\n");
echo "wrote tests/vectors/cryptogen.json\n";
