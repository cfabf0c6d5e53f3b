package proxy

import "github.com/abortscope/abortscope/faults"

// judgeFault turns the natural judgement of a connection on which an ending
// rule fired into fault_injected, with the error MariaDB logs for that
// action in the phase it fired in (measured in the e2e fault recipes).
//
// Stalls and blackholes close nothing themselves: a peer's reaction to them
// ends the connection (a client's read timeout, then its FIN, which the
// proxy passes on), so the natural judgement of that ending already says
// what MariaDB logs: 1158 after a FIN at rest or during a command, 1160 mid-
// result. The exception is a stalled reply that the server gave up on: its
// blocked write met net_write_timeout (1160, errno 110). A stall that the
// connection survived, ending cleanly, stays clean.
func judgeFault(j judgement, f *faults.Fired, phase string) judgement {
	switch f.Action {
	case faults.StallServer, faults.StallClient, faults.Blackhole:
		if j.verdict == VerdictClean {
			return j
		}
		j.verdict = VerdictFaultInjected
		if f.Action != faults.Blackhole && phase == "result" && j.by == ByServer {
			j.expected = ErNetErrorWrite
		}
		return j
	}
	j.verdict = VerdictFaultInjected
	j.expected = faultExpected(f.Action, phase)
	return j
}

// faultExpected is the error MariaDB logs after action fired in phase.
func faultExpected(a faults.Action, phase string) int {
	switch a {
	case faults.DropQuit, faults.Truncate, faults.Error:
		return ErNetReadError // it reads EOF where it waited for a packet
	case faults.CorruptSeq:
		return 1156 // ER_NET_PACKETS_OUT_OF_ORDER
	case faults.Oversize:
		return 1153 // ER_NET_PACKET_TOO_LARGE
	case faults.ResetServer, faults.ResetClient, faults.CloseServer, faults.CloseClient:
		switch phase {
		case "result":
			return ErNetErrorWrite
		case "command":
			if a == faults.ResetServer || a == faults.ResetClient {
				return ErNetErrorWrite // its reply write meets the reset
			}
			return ErNetReadError // the reply is written, the next read finds EOF
		case "idle", "infile":
			return ErNetReadError
		}
	}
	return 0
}
