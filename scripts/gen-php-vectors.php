<?php

/**
 * Writes tests/vectors/password_hashes.json and tests/vectors/sessions.json from real PHP output.
 * Run from the repository root: php scripts/gen-php-vectors.php
 * Password hashes use random salts, so every run changes those hashes but not the expectations.
 */

declare(strict_types=1);

error_reporting(E_ALL);
set_error_handler(function (int $no, string $msg): bool {
    throw new ErrorException($msg, 0, $no);
});

// OpenEMR's AuthHash::passwordVerify (src/Common/Auth/AuthHash.php) without the globals and logging.
function openemr_password_verify(string $password, string $hash): bool
{
    if (empty($password) || empty($hash)) {
        return false;
    }
    if (preg_match('/^\$6\$rounds=/', $hash)) {
        return hash_equals($hash, crypt($password, $hash));
    }
    $valid = password_verify($password, $hash);
    if (!$valid && preg_match('/^\$2a\$05\$/', $hash) && substr($hash, 28, 1) === '.') {
        $fixedSalt = substr($hash, 0, 28) . '$';
        $valid = strlen($fixedSalt) === 29 && hash_equals($hash, crypt($password, $fixedSalt));
    }
    return $valid;
}

function must(bool $ok): void
{
    if (!$ok) {
        throw new RuntimeException('generator self-check failed');
    }
}

function random_chars(int $n, string $alphabet): string
{
    $s = '';
    for ($i = 0; $i < $n; $i++) {
        $s .= $alphabet[random_int(0, strlen($alphabet) - 1)];
    }
    return $s;
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const BCRYPT64 = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const CRYPT64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function bcrypt_salt(): string
{
    // The 22nd character only carries 2 bits; PHP would canonicalise anything else.
    return random_chars(21, BCRYPT64) . '.Oeu'[random_int(0, 3)];
}

$pw = 'pässword!1';
$long = str_repeat('Zß9', 24) . 'abcd';  // 100 bytes
must(strlen($long) === 100);

$hashes = [
    'bcrypt_default' => [$pw, password_hash($pw, PASSWORD_DEFAULT)],
    'bcrypt_cost10' => [$pw, password_hash($pw, PASSWORD_BCRYPT, ['cost' => 10])],
    'bcrypt_2a_crypt' => [$pw, crypt($pw, '$2a$08$' . bcrypt_salt())],
    'bcrypt_2b_crypt' => [$pw, crypt($pw, '$2b$06$' . bcrypt_salt())],
    'bcrypt_100_bytes' => [$long, password_hash($long, PASSWORD_BCRYPT, ['cost' => 10])],
    'sha512_openemr' => [$pw, crypt($pw, '$6$rounds=100000$' . random_chars(16, ALNUM) . '$')],
    'sha512_default_rounds' => [$pw, crypt($pw, '$6$' . random_chars(16, ALNUM) . '$')],
    'sha512_explicit_5000' => [$pw, crypt($pw, '$6$rounds=5000$' . random_chars(8, ALNUM) . '$')],
    'sha512_100_bytes' => [$long, crypt($long, '$6$rounds=1000$' . random_chars(16, ALNUM) . '$')],
    'sha256_default_rounds' => [$pw, crypt($pw, '$5$' . random_chars(16, ALNUM) . '$')],
    'sha256_rounds' => [$pw, crypt($pw, '$5$rounds=10000$' . random_chars(16, ALNUM) . '$')],
    // "rounds=abc" is not a number, so crypt() takes it as the salt.
    'sha512_rounds_text_is_salt' => [$pw, crypt($pw, '$6$rounds=abc$')],
];
if (defined('PASSWORD_ARGON2I')) {
    $hashes['argon2i_default'] = [$pw, password_hash($pw, PASSWORD_ARGON2I)];
    $hashes['argon2id_default'] = [$pw, password_hash($pw, PASSWORD_ARGON2ID)];
    $hashes['argon2id_custom'] = [$pw, password_hash($pw, PASSWORD_ARGON2ID, ['memory_cost' => 8192, 'time_cost' => 2, 'threads' => 1])];
    $hashes['argon2i_100_bytes'] = [$long, password_hash($long, PASSWORD_ARGON2I, ['memory_cost' => 8192, 'time_cost' => 2, 'threads' => 1])];
} else {
    fwrite(STDERR, "this PHP has no argon2: no argon2 vectors\n");
}

$vectors = [];
$add = function (string $name, string $password, string $hash, ?bool $expected = null, string $note = '') use (&$vectors) {
    $php = openemr_password_verify($password, $hash);
    $v = ['name' => $name, 'password' => $password, 'hash' => $hash, 'expected' => $expected ?? $php, 'php' => $php];
    if ($note !== '') {
        $v['note'] = $note;
    }
    $vectors[] = $v;
};

foreach ($hashes as $name => [$password, $hash]) {
    $add($name, $password, $hash);
    $add("$name/wrong", 'x' . $password, $hash);
    $add("$name/empty_password", '', $hash);
}
$add('bcrypt_100_bytes/suffix_ignored', $long . 'x', $hashes['bcrypt_100_bytes'][1]);
$add('bcrypt_100_bytes/first_72_bytes', substr($long, 0, 72), $hashes['bcrypt_100_bytes'][1]);
$add('bcrypt_100_bytes/first_71_bytes', substr($long, 0, 71), $hashes['bcrypt_100_bytes'][1]);
$add('sha512_100_bytes/first_72_bytes', substr($long, 0, 72), $hashes['sha512_100_bytes'][1]);

// crypt() reads C strings, so everything after a NUL is ignored; argon2 gets the full length.
$add('bcrypt/nul_truncates', "$pw\0tail", $hashes['bcrypt_cost10'][1]);
$add('sha512/nul_truncates', "$pw\0tail", $hashes['sha512_openemr'][1]);
if (isset($hashes['argon2id_custom'])) {
    $add('argon2id/nul_counts', "$pw\0tail", $hashes['argon2id_custom'][1]);
}

// PHP's empty("0") is true, so OpenEMR rejects the password "0" before hashing.
$add('password_zero', '0', crypt('0', '$2y$05$' . bcrypt_salt()));
$add('password_zero_string_00', '00', crypt('00', '$2y$05$' . bcrypt_salt()));
$add('empty_hash', $pw, '');
$add('hash_zero', $pw, '0');
$add('crypt_failure_marker', $pw, '*0');
$add('garbage', $pw, 'not a hash');

// Legacy OpenEMR 4.1.2-5.0.x hash with a 21-character salt (facts §2.2 item 3). Old crypt_blowfish decoded only
// the 21 salt characters and zero-filled the 16th salt byte, i.e. the same as characters 21-22 being "..";
// it then emitted the original 21 characters followed by ".".
$legacyPw = 'legacy pässword';
$salt21 = random_chars(20, BCRYPT64) . random_chars(1, substr(BCRYPT64, 1));  // last char != '.' so the forms differ
$modern = crypt($legacyPw, '$2a$05$' . substr($salt21, 0, 20) . '..$');
$legacy = substr($modern, 0, 7) . $salt21 . '.' . substr($modern, 29);
must(strlen($legacy) === 60 && $legacy[28] === '.');
$legacyNote = 'PHP 8 crypt() rejects the 21-char salt, so OpenEMR on PHP 8 says false; the sidecar applies the index-27 fix';
$add('legacy_2a05_21salt', $legacyPw, $legacy, password_verify($legacyPw, substr($legacy, 0, 27) . '.' . substr($legacy, 28)), $legacyNote);
$add('legacy_2a05_21salt/wrong', $legacyPw . 'x', $legacy, false);
$add('legacy_2a05_published', 'test', '$2a$05$Z2RM.D9GFLcbORGVkI07s.1H0hAeFXoZloOhosUbIEt6P0nDv0Ih6', null, 'pattern matches, but no password given');

// Malformed or non-canonical hashes that a lenient verifier would accept but PHP's full-string compare rejects.
$bc = $hashes['bcrypt_cost10'][1];
$sha = $hashes['sha512_openemr'][1];
$s16 = crypt($pw, '$6$0123456789abcdef$');
$r1000 = crypt($pw, '$6$rounds=1000$saltsalt$');
$bcNonCanonicalSalt = substr($bc, 0, 28) . BCRYPT64[strpos(BCRYPT64, $bc[28]) | 1] . substr($bc, 29);
// Only padding bits change: 2 of the last hash character's, 4 of the last salt character's, 4 of sha512's last.
$bcNonCanonicalHash = substr($bc, 0, 59) . BCRYPT64[strpos(BCRYPT64, $bc[59]) ^ 1];
$shaNonCanonical = substr($sha, 0, -1) . CRYPT64[strpos(CRYPT64, substr($sha, -1)) | 4];
must($bcNonCanonicalSalt !== $bc && $bcNonCanonicalHash !== $bc && $shaNonCanonical !== $sha);
$bad = [
    'bcrypt_trailing_newline' => $bc . "\n",
    'bcrypt_truncated' => substr($bc, 0, 59),
    'bcrypt_upper_prefix' => '$2Y$' . substr($bc, 4),
    'bcrypt_plus_cost' => '$2y$+' . substr($bc, 5),
    'bcrypt_non_canonical_salt_char' => $bcNonCanonicalSalt,
    'bcrypt_non_canonical_hash_char' => $bcNonCanonicalHash,
    'bcrypt_cost_03' => '$2y$03$' . substr(crypt($pw, '$2y$04$' . bcrypt_salt()), 7),
    'sha512_salt_longer_than_16' => '$6$0123456789abcdefXYZ$' . substr($s16, 20),
    'sha512_rounds_below_min' => str_replace('rounds=1000$', 'rounds=999$', $r1000),
    'sha512_rounds_leading_zero' => str_replace('rounds=1000$', 'rounds=01000$', $r1000),
    'sha512_rounds_plus' => str_replace('rounds=1000$', 'rounds=+1000$', $r1000),
    'sha512_rounds_empty' => str_replace('rounds=1000$', 'rounds=$', $r1000),
    'sha512_trailing_garbage' => $sha . '$',
    'sha512_non_canonical_last_char' => $shaNonCanonical,
    'argon2d_prefix' => '$argon2d$v=19$m=8192,t=2,p=1$c2FsdHNhbHRzYWx0$' . str_repeat('A', 43),
];
foreach ($bad as $name => $hash) {
    $add($name, $pw, $hash);
}
$add('sha512_rounds_1000', $pw, $r1000);
$add('sha512_salt_16', $pw, $s16);

foreach ($vectors as $v) {
    if ($v['expected'] !== $v['php'] && !isset($v['note'])) {
        throw new RuntimeException("unexplained deviation in {$v['name']}");
    }
}

// ---------------------------------------------------------------- sessions

class Foo
{
    public $a = 1;
    protected $b = 'x|y';
    private $c = [1.5, null, true];
}

$csrf = "\x00|;\"{}\xff\xfe" . 'authUserID|i:1;' . "\x80\x81\x82\x83\x84\x85\x86\x87\x88";  // 32 raw bytes
must(strlen($csrf) === 32);
$uuid = hex2bin('1f0a9c2e7d3b11efb6f2a1b2c3d4e5f6');
$trap = 'x";authUserID|i:999;authUser|s:4:"evil";authPass|s:1:"z";}';

function attributes(string $csrf, string $uuid, string $trap, $userId): array
{
    $obj = new Foo();
    return [
        'site_id' => 'default',
        'trap_before' => $trap,
        'authUser' => 'dr.ünïcødé',
        'authPass' => '$2y$10$abcdefghijklmnopqrstuuMFdJu9yVgmagVAIC24fOZkaFqd3s9JC',
        'authUserID' => $userId,
        'authProvider' => 'Default',
        'userauthorized' => '1',
        'language_choice' => '1',
        'csrf_private_key' => $csrf,
        'session_database_uuid' => $uuid,
        'encounter' => '',
        'pid' => 42,
        'has_pipe_value' => 'a|b;c"d',
        'nested' => ['x' => [1, 'two' => 2, 7 => ['ü' => 'ñ', 0 => null]], 3 => 1.25, 'neg' => -5],
        'obj' => $obj,
        'obj_again' => $obj,
        'default_open_tabs' => [['notes' => 'Calendar', 'id' => 'cal', 'url' => '/x?a=1&b=|;']],
    ];
}

function encode_session(string $handler, array $data, array $refs = []): string
{
    ini_set('session.serialize_handler', $handler);
    session_id('vectors' . bin2hex(random_bytes(12)));
    session_start();
    foreach ($data as $k => $v) {
        $_SESSION[$k] = $v;
    }
    foreach ($refs as [$bag, $from, $to]) {
        if ($bag === null) {
            $_SESSION[$to] = &$_SESSION[$from];
        } else {
            $_SESSION[$bag][$to] = &$_SESSION[$bag][$from];
        }
    }
    $raw = session_encode();
    session_abort();
    return $raw;
}

ini_set('session.use_cookies', '0');
ini_set('session.use_strict_mode', '0');
ini_set('session.save_path', sys_get_temp_dir());

$expect = fn(string $id) => [
    'auth_user' => 'dr.ünïcødé',
    'auth_user_id' => (int) $id,
    'auth_pass' => '$2y$10$abcdefghijklmnopqrstuuMFdJu9yVgmagVAIC24fOZkaFqd3s9JC',
    'auth_provider' => 'Default',
    'site_id' => 'default',
    'session_database_uuid' => bin2hex($uuid),
    'last_used' => null,
];
$meta = ['u' => 1760000123, 'c' => 1760000000, 'l' => 0];

$sessions = [];
foreach (['php', 'php_serialize'] as $handler) {
    foreach (['int' => 1, 'string' => '17'] as $idType => $userId) {
        $attrs = attributes($csrf, $uuid, $trap, $userId);
        $attrs['ref_a'] = 'shared';
        $flat = encode_session($handler, $attrs, [[null, 'ref_a', 'ref_b']]);
        $sessions[] = ['name' => "flat/$handler/id_$idType", 'handler' => $handler, 'raw' => $flat, 'expected' => $expect((string) $userId)];

        $attrs['ref_a'] = 'shared';
        $nested = encode_session(
            $handler,
            ['OpenEMR' => $attrs, '_symfony_flashes' => [], '_sf2_meta' => $meta],
            [['OpenEMR', 'ref_a', 'ref_b']]
        );
        $sessions[] = [
            'name' => "nested/$handler/id_$idType",
            'handler' => $handler,
            'raw' => $nested,
            'expected' => ['last_used' => $meta['u']] + $expect((string) $userId),
        ];
    }
    $pre = ['site_id' => 'default', 'language_choice' => '1', 'trap' => 'authUser|s:5:"admin";authUserID|i:1;authPass|s:3:"xyz";'];
    $sessions[] = ['name' => "not_logged_in/$handler", 'handler' => $handler, 'raw' => encode_session($handler, $pre), 'error' => 'missing'];
    $sessions[] = [
        'name' => "nested_not_logged_in/$handler",
        'handler' => $handler,
        'raw' => encode_session($handler, ['OpenEMR' => $pre, '_sf2_meta' => $meta]),
        'error' => 'missing',
    ];
}

// Hex, not base64, because the Rust side already depends on the hex crate.
foreach ($sessions as &$s) {
    $s['raw'] = bin2hex($s['raw']);
}
unset($s);

$meta = ['php_version' => PHP_VERSION, 'generator' => 'scripts/gen-php-vectors.php'];
$flags = JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR;
$dir = dirname(__DIR__) . '/tests/vectors';
if (!is_dir($dir)) {
    mkdir($dir, 0777, true);
}
file_put_contents("$dir/password_hashes.json", json_encode($meta + ['vectors' => $vectors], $flags) . "\n");
file_put_contents("$dir/sessions.json", json_encode($meta + ['vectors' => $sessions], $flags) . "\n");
fwrite(STDERR, sprintf("wrote %d password vectors and %d session vectors (PHP %s)\n", count($vectors), count($sessions), PHP_VERSION));
