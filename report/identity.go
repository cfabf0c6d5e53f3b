package report

import (
	"net"
	"path"
	"strconv"
	"strings"

	"github.com/abortscope/abortscope/events"
)

// Key is who a client is, as the report groups connections: the login
// user, the host it connects from, the program it says it is and the
// process the proxy saw behind it. Each field may be empty when unknown.
type Key struct {
	User    string `json:"user"`
	Host    string `json:"host"`
	Program string `json:"program"`
	Process string `json:"process"`
}

// KeyOf returns the client identity of e.
//
//   - Host is the IP of client_addr without the port: every connection of a
//     pool comes from a new port.
//   - Program is the program_name attribute (set by the application or the
//     mariadb CLI), else _client_name (the connector: "pymysql",
//     "Go-MySQL-Driver").
//   - Process is the name of the local process behind the client, from
//     client_cmd (only known for loopback clients): the executable's base
//     name, and for an interpreter the script it runs ("python3
//     report.py"). Pids change on every run, so they are detail, not
//     identity.
func KeyOf(e *events.Event) Key {
	return Key{
		User:    e.User,
		Host:    hostOf(e.ClientAddr),
		Program: programOf(e.Attrs),
		Process: ProcessName(e.ClientCmd),
	}
}

// hostOf drops the port from a client address ("127.0.0.1:34508",
// "[::1]:5000"); an address without a port is kept whole.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func programOf(attrs map[string]string) string {
	if p := attrs["program_name"]; p != "" {
		return p
	}
	return attrs["_client_name"]
}

// pidOf is the client's process id: the one the proxy found through /proc,
// else the _pid attribute the connector sent (0 if neither).
func pidOf(e *events.Event) int {
	if e.ClientPID != 0 {
		return e.ClientPID
	}
	pid, err := strconv.Atoi(e.Attrs["_pid"])
	if err != nil || pid < 0 {
		return 0
	}
	return pid
}

// ProcessName names the program of a command line for grouping: the base
// name of the executable ("/usr/local/bin/billing --daily" gives
// "billing"). For an interpreter the script or module it runs is added
// ("/usr/bin/python3 -u /opt/jobs/report.py" gives "python3 report.py",
// "java -jar app.jar" gives "java app.jar"), since "python3" alone would put
// every script of a host in one group.
func ProcessName(cmd string) string {
	args := strings.Fields(cmd)
	if len(args) == 0 {
		return ""
	}
	// A process may rewrite its title ("php-fpm: pool www").
	exe := strings.TrimSuffix(path.Base(args[0]), ":")
	if !isInterpreter(exe) {
		return exe
	}
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-m" || a == "-jar": // python -m module, java -jar app.jar
			if i+1 < len(args) {
				return exe + " " + path.Base(args[i+1])
			}
			return exe
		case a == "-c" || a == "-e": // inline code: nothing better to name
			return exe
		case a == "-cp" || a == "-classpath" || a == "--class-path":
			i++ // skip the option's value
		case strings.HasPrefix(a, "-"):
		default:
			return exe + " " + path.Base(a)
		}
	}
	return exe
}

// isInterpreter reports whether exe runs scripts: python, python3.11,
// perl5.36, node, java, sh…
func isInterpreter(exe string) bool {
	for _, p := range []string{"python", "perl", "ruby", "php"} {
		if v, ok := strings.CutPrefix(exe, p); ok && strings.Trim(v, "0123456789.") == "" {
			return true
		}
	}
	switch exe {
	case "node", "nodejs", "java", "sh", "bash", "dash", "zsh":
		return true
	}
	return false
}
