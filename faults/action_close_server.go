package faults

// closeServer (close_server) closes the upstream socket (FIN, no COM_QUIT)
// after the chunk that triggers it, and the client's: MariaDB reads EOF
// where it waited for a command (1158, "Aborted connection").
var closeServer = closes{server: CloseAll, client: CloseAll}
