package faults

// resetServer (reset_server) resets the upstream socket after the chunk
// that triggers it, and closes the client's. Measured against MariaDB
// 10.11 after 64 KiB of a result: `errno: 104  vio_errno: 1160`; the client
// gets 2013 or "invalid connection".
var resetServer = closes{server: RST, client: CloseAll, reset: true}
