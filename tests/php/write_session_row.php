<?php
// Writes one signed-in OpenEMR session into a PDO session table through PHP's own session machinery,
// as a database session handler on OpenEMR's web servers would. Reads a JSON request on stdin:
// url, table, id, handler (php|php_serialize), layout (flat|nested), age (seconds since the write),
// lifetime, padding (extra bytes), session (the keys OpenEMR sets; session_database_uuid in hex).

final class PdoSessionRows implements SessionHandlerInterface
{
    public function __construct(private PDO $pdo, private string $table, private int $lifetime, private int $age)
    {
    }

    public function open(string $path, string $name): bool
    {
        return true;
    }

    public function close(): bool
    {
        return true;
    }

    public function read(string $id): string|false
    {
        $select = $this->pdo->prepare("SELECT sess_data FROM {$this->table} WHERE sess_id = ?");
        $select->execute([$id]);
        $data = $select->fetchColumn();
        return $data === false ? '' : $data;
    }

    public function write(string $id, string $data): bool
    {
        $write = $this->pdo->prepare(
            "REPLACE INTO {$this->table} (sess_id, sess_data, sess_lifetime, sess_time) VALUES (?, ?, ?, ?)"
        );
        $write->bindValue(1, $id);
        $write->bindValue(2, $data, PDO::PARAM_LOB);
        $write->bindValue(3, $this->lifetime, PDO::PARAM_INT);
        $write->bindValue(4, time() - $this->age, PDO::PARAM_INT);
        return $write->execute();
    }

    public function destroy(string $id): bool
    {
        return $this->pdo->prepare("DELETE FROM {$this->table} WHERE sess_id = ?")->execute([$id]);
    }

    public function gc(int $max_lifetime): int|false
    {
        return 0;
    }
}

$request = json_decode(stream_get_contents(STDIN), true, 16, JSON_THROW_ON_ERROR);
$url = parse_url($request['url']);
$pdo = new PDO(
    sprintf('mysql:host=%s;port=%d;dbname=%s', $url['host'], $url['port'], ltrim($url['path'], '/')),
    $url['user'],
    $url['pass'],
    [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION],
);

ini_set('session.use_cookies', '0');
ini_set('session.cache_limiter', '');
ini_set('session.serialize_handler', $request['handler']);
session_set_save_handler(new PdoSessionRows($pdo, $request['table'], $request['lifetime'], $request['age']), true);
session_id($request['id']);
session_start();

$attributes = $request['session'];
$attributes['authUserID'] = (int) $attributes['authUserID'];
$attributes['session_database_uuid'] = hex2bin($attributes['session_database_uuid']);
if ($request['padding'] > 0) {
    $attributes['padding'] = str_repeat('x', $request['padding']);
}
if ($request['layout'] === 'nested') {
    $_SESSION['OpenEMR'] = $attributes;
    $_SESSION['_symfony_flashes'] = [];
    $_SESSION['_sf2_meta'] = ['u' => time(), 'c' => time(), 'l' => 0];
} else {
    foreach ($attributes as $key => $value) {
        $_SESSION[$key] = $value;
    }
}
session_write_close();
