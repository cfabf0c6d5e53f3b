package faults

// closeClient (close_client) closes the client's socket after the chunk
// that triggers it; the server sees what a client that closed without
// COM_QUIT gives it: a FIN, after which it writes what is left of its reply
// and then reads EOF.
var closeClient = closes{server: FIN, client: CloseAll}
