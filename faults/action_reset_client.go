package faults

// resetClient (reset_client) resets the client's socket after the chunk
// that triggers it; the server sees what a reset client gives it (RST).
var resetClient = closes{server: RST, client: RST, reset: true}
