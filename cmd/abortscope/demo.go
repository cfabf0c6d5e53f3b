package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	gmysql "github.com/go-mysql-org/go-mysql/client"
	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/abortscope/abortscope/admin"
	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/explain"
	"github.com/abortscope/abortscope/faults"
	"github.com/abortscope/abortscope/metrics"
	"github.com/abortscope/abortscope/proxy"
	"github.com/abortscope/abortscope/report"
	"github.com/abortscope/abortscope/session"
	"github.com/abortscope/abortscope/transport"
)

// The demo: the real proxy in front of an embedded MySQL-protocol server
// (or a real one, --upstream), and scripted clients that end their
// connections every way abortscope tells apart. Everything it prints comes
// from the proxy's own events, explain's causes and the report's code.

func demoCommand(stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "watch abortscope judge six endings, with no database needed",
		Description: "Starts an embedded MySQL-protocol server (or uses --upstream), the proxy with fault injection\n" +
			"allowed, and scripted clients that end their connections every way: clean, without COM_QUIT,\n" +
			"reset, killed mid-result, gone during the handshake, and cut by a fault rule. Then prints each\n" +
			"event's verdict, what MariaDB logs for it and the advice, and the per-client report.\n\n" +
			"Examples:\n" +
			"   abortscope demo\n" +
			"   abortscope demo --keep            # then: curl 127.0.0.1:9307/connections\n" +
			"   MYSQL_PWD=secret abortscope demo --upstream 127.0.0.1:3306 --user root",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "upstream", Usage: "a real MariaDB `HOST:PORT` to run the story against (default: an embedded server)"},
			&cli.StringFlag{Name: "user", Value: "root", Usage: "the `USER` the scripted clients log in as"},
			&cli.StringFlag{Name: "password", EnvVars: []string{"MYSQL_PWD"}, Usage: "their `PASSWORD` (with --upstream; prefer the environment: a flag shows in ps)"},
			&cli.BoolFlag{Name: "keep", Usage: "leave the proxy and its admin API running afterwards (Ctrl-C stops them)"},
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:0", Usage: "the loopback `HOST:PORT` of the demo's proxy (with --keep, 127.0.0.1:3307 unless set)"},
			&cli.StringFlag{Name: "admin", Value: "127.0.0.1:9307", Usage: "the admin API's loopback `HOST:PORT` with --keep (it arms faults without a token)"},
		},
		Action: func(cc *cli.Context) error {
			return runDemo(cc, stdout, stderr)
		},
	}
}

// bigQuery is the statement whose reply is large enough to be cut: a
// sequence on MariaDB, a canned result on the embedded server.
const bigQuery = "SELECT seq, REPEAT('x', 200) AS filler FROM mysql.seq_1_to_100000"

// demoClient is one scripted client: its program name (a connection
// attribute, as drivers send), what it does, and the verdict that must
// come of it.
type demoClient struct {
	program string
	story   string
	want    events.Verdict
	run     func(d *demo) error
}

// demo is one run's state.
type demo struct {
	addr, user, pass string
	mu               sync.Mutex
	evs              []events.Event
	got              chan struct{}
}

// Emit keeps the proxy's events (demo is an events.Sink).
func (d *demo) Emit(e *events.Event) {
	d.mu.Lock()
	d.evs = append(d.evs, *e)
	d.mu.Unlock()
	select {
	case d.got <- struct{}{}:
	default:
	}
}

// waitEvents waits until n events came, or 10 s passed.
func (d *demo) waitEvents(n int) ([]events.Event, error) {
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		evs := append([]events.Event(nil), d.evs...)
		d.mu.Unlock()
		if len(evs) >= n {
			return evs, nil
		}
		select {
		case <-d.got:
		case <-deadline.C:
			return evs, fmt.Errorf("only %d of %d connections ended within 10 s", len(evs), n)
		}
	}
}

// connect logs in through the proxy as program, and returns the client and
// its TCP socket (for a reset).
func (d *demo) connect(program string) (*gmysql.Conn, *net.TCPConn, error) {
	var tcp *net.TCPConn
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", addr)
		if err == nil {
			tcp = c.(*net.TCPConn)
		}
		return c, err
	}
	c, err := gmysql.ConnectWithDialer(context.Background(), "tcp", d.addr, d.user, d.pass, "", dial,
		func(c *gmysql.Conn) error {
			c.SetAttributes(map[string]string{"program_name": program})
			return nil
		})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: logging in through the proxy: %w", program, err)
	}
	return c, tcp, nil
}

// reset closes c with RST (SO_LINGER 0), as a killed process's kernel
// does when unread bytes remain.
func reset(c *net.TCPConn) {
	c.SetLinger(0)
	c.Close()
}

// sendBig sends bigQuery and reads the first bytes of its reply, leaving
// the rest unread.
func sendBig(c *net.TCPConn) error {
	q := append([]byte{byte(len(bigQuery) + 1), 0, 0, 0, mysql.COM_QUERY}, bigQuery...)
	if _, err := c.Write(q); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.ReadFull(c, make([]byte, 1024))
	return err
}

var demoClients = []demoClient{
	{"web-frontend", "runs a query and says COM_QUIT (mysql_close)", events.Clean, func(d *demo) error {
		c, _, err := d.connect("web-frontend")
		if err != nil {
			return err
		}
		if _, err := c.Execute("SELECT 1"); err != nil {
			return err
		}
		return c.Quit()
	}},
	{"cron-cleanup", "runs a query and exits without mysql_close()", events.ClientNoQuit, func(d *demo) error {
		c, tcp, err := d.connect("cron-cleanup")
		if err != nil {
			return err
		}
		if _, err := c.Execute("SELECT 1"); err != nil {
			return err
		}
		return tcp.Close() // FIN, no COM_QUIT
	}},
	{"queue-worker", "is killed while idle (its socket reset)", events.ClientReset, func(d *demo) error {
		_, tcp, err := d.connect("queue-worker")
		if err != nil {
			return err
		}
		reset(tcp)
		return nil
	}},
	{"export-tool", "is killed in the middle of a large result", events.ClientAbortInFlight, func(d *demo) error {
		_, tcp, err := d.connect("export-tool")
		if err != nil {
			return err
		}
		if err := sendBig(tcp); err != nil {
			return err
		}
		reset(tcp)
		return nil
	}},
	{"health-check", "connects and closes without a word (a TCP health check)", events.HandshakeAbort, func(d *demo) error {
		c, err := net.DialTimeout("tcp", d.addr, 5*time.Second)
		if err != nil {
			return err
		}
		// Closed with the greeting unread (a reset), as a check that
		// does not read does; one that read it and left in order would
		// look like a client that wanted TLS.
		tc, _ := transport.Wrap(c)
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if n, _ := transport.Pending(tc); n > 0 {
				break
			}
		}
		return c.Close()
	}},
	{"report-job", "reads a large result while a reset_server fault rule is armed for it", events.FaultInjected, func(d *demo) error {
		_, tcp, err := d.connect("report-job")
		if err != nil {
			return err
		}
		defer tcp.Close()
		q := append([]byte{byte(len(bigQuery) + 1), 0, 0, 0, mysql.COM_QUERY}, bigQuery...)
		if _, err := tcp.Write(q); err != nil {
			return err
		}
		tcp.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, tcp) // until the proxy cuts the connection
		return nil
	}},
}

func runDemo(cc *cli.Context, stdout, stderr io.Writer) error {
	start := time.Now()
	// The demo's proxy has a fault armed, and its admin API arms more
	// without a token: both stay on loopback.
	for _, f := range []string{"listen", "admin"} {
		if err := checkHostPort("--"+f, cc.String(f), "127.0.0.1:0"); err != nil {
			return err
		}
		if err := admin.CheckLoopback(cc.String(f)); err != nil {
			return asUsage(reword(err, "--%s %s: the demo listens on loopback only (its faults need no token); give a 127.0.0.1 address, or run abortscope serve", f, cc.String(f)))
		}
	}
	ctx, stop := signal.NotifyContext(cc.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := zap.NewNop()
	if cc.Bool("keep") {
		l, err := newLogger("console", "warn", stderr)
		if err != nil {
			return err
		}
		log = l
	}

	upstream, real := cc.String("upstream"), cc.String("upstream") != ""
	if !real {
		up, err := startEmbedded(cc.String("user"), cc.String("password"))
		if err != nil {
			return err
		}
		defer up.Close()
		upstream = up.Addr().String()
	}
	var before map[string]int64
	if real {
		b, err := abortedCounters(upstream, cc.String("user"), cc.String("password"))
		if err != nil {
			return fmt.Errorf("--upstream %s: %w (give --user and --password of an account that may read SHOW GLOBAL STATUS)", upstream, err)
		}
		before = b
	}

	d := &demo{user: cc.String("user"), pass: cc.String("password"), got: make(chan struct{}, 1)}
	set := faults.NewSet(time.Now().UnixNano(), nil)
	if _, err := set.Add(faults.Rule{Name: "demo-report-job", Attrs: map[string]string{"program_name": "report-job"},
		Phase: "result", AfterBytes: 65536, Count: 1, Action: faults.ResetServer}); err != nil {
		return err
	}
	clients := &report.Aggregator{}
	p := &proxy.Proxy{Upstream: upstream, Logger: log, Annotate: explain.Annotate, Faults: set,
		HandshakeTimeout: 10 * time.Second, ClientTLS: session.Passthrough}
	if !real {
		p.UpstreamTLS = session.UpstreamOff // the embedded server speaks no TLS
	}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, p, nil)
	if err != nil {
		return err
	}
	p.Events = events.Sinks{d, clients, m}
	listen := cc.String("listen")
	if cc.Bool("keep") && !cc.IsSet("listen") {
		listen = "127.0.0.1:3307"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return listenError("--listen", listen, err)
	}
	d.addr = ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- p.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(sctx)
	}()

	what := "an embedded MySQL-protocol server (go-mysql); it logs nothing itself, so the MariaDB lines below are what a MariaDB 10.11 with --log-warnings=4 logs for each ending (measured: docs/events.md, \"Every ending, measured\")"
	if real {
		what = "the MariaDB at " + upstream
	}
	fmt.Fprintf(stdout, "abortscope demo: the proxy at %s in front of %s;\na fault rule is armed: reset_server, for program_name=report-job, mid-result after 64 KiB.\n\n", d.addr, what)

	for i, c := range demoClients {
		if err := c.run(d); err != nil {
			return fmt.Errorf("scripted client %s: %w", c.program, err)
		}
		if _, err := d.waitEvents(i + 1); err != nil {
			return err
		}
	}
	evs, err := d.waitEvents(len(demoClients))
	if err != nil {
		return err
	}
	byProgram := map[string]events.Event{}
	for _, e := range evs {
		prog := e.Attrs["program_name"]
		if prog == "" && e.Verdict == events.HandshakeAbort {
			prog = "health-check" // it sent nothing: no attributes
		}
		byProgram[prog] = e
	}
	var wrong []string
	for i, c := range demoClients {
		e, ok := byProgram[c.program]
		if !ok {
			wrong = append(wrong, c.program+": no event")
			continue
		}
		fmt.Fprintf(stdout, "%d. %s %s\n", i+1, c.program, c.story)
		fmt.Fprintf(stdout, "   event:   verdict %s, phase %s, ended by %s, close %s, server connection %d", e.Verdict, e.Phase, e.EndedBy, e.Close, e.ServerConnID)
		if e.Fault != "" {
			fmt.Fprintf(stdout, ", fault %s (%s)", e.Fault, e.Action)
		}
		fmt.Fprintln(stdout)
		if line := explain.ServerLogLine(&e); line != "" {
			fmt.Fprintf(stdout, "   MariaDB: error %s; logs %s\n", expectedText(e.ExpectedServerError), line)
		} else if e.ExpectedServerError != 0 {
			fmt.Fprintf(stdout, "   MariaDB: error %d\n", e.ExpectedServerError)
		} else {
			fmt.Fprintf(stdout, "   MariaDB: logs nothing for it\n")
		}
		fmt.Fprintf(stdout, "   cause:   %s: %s\n\n", e.Cause, e.Advice)
		if e.Verdict != c.want {
			wrong = append(wrong, fmt.Sprintf("%s: verdict %s, want %s", c.program, e.Verdict, c.want))
		}
	}

	fmt.Fprintln(stdout, "Per client (abortscope report):")
	sums := clients.Summaries()
	if err := report.WriteTable(stdout, sums); err != nil {
		return err
	}
	if err := report.WriteAdvice(stdout, sums); err != nil {
		return err
	}
	if real {
		predicted := map[string]int64{}
		for _, e := range evs {
			switch {
			case e.ExpectedServerError == 0:
			case e.User == "":
				predicted["Aborted_connects"]++
			default:
				predicted["Aborted_clients"]++
			}
		}
		// MariaDB counts an abort when its thread notices it (a failed
		// write, a read that ends), a moment after the proxy's event:
		// poll until the counters have moved as far as predicted, for at
		// most 5 s.
		var after map[string]int64
		for deadline := time.Now().Add(5 * time.Second); ; {
			if after, err = abortedCounters(upstream, cc.String("user"), cc.String("password")); err != nil {
				return err
			}
			if (after["Aborted_clients"]-before["Aborted_clients"] >= predicted["Aborted_clients"] &&
				after["Aborted_connects"]-before["Aborted_connects"] >= predicted["Aborted_connects"]) ||
				time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		fmt.Fprintln(stdout, "\nMariaDB's counters (other clients of the server move them too):")
		for _, k := range []string{"Aborted_clients", "Aborted_connects"} {
			fmt.Fprintf(stdout, "   %s +%d (abortscope's events predict +%d)\n", k, after[k]-before[k], predicted[k])
		}
	}
	fmt.Fprintf(stdout, "\n%d connections, %d verdicts, in %.1f s.\n", len(evs), len(demoClients), time.Since(start).Seconds())
	if len(wrong) > 0 {
		return fmt.Errorf("the demo did not go as scripted: %s", strings.Join(wrong, "; "))
	}

	if !cc.Bool("keep") {
		return nil
	}
	return keepServing(ctx, cc, stdout, d.addr, p, set, reg, clients, log, served)
}

// expectedText names an error number MariaDB logs.
func expectedText(n int) string {
	if n == 0 {
		return "none"
	}
	return strconv.Itoa(n)
}

// keepServing runs the admin API next to the demo's proxy until ctx ends.
func keepServing(ctx context.Context, cc *cli.Context, stdout io.Writer, listen string, p *proxy.Proxy, set *faults.Set,
	reg *prometheus.Registry, clients *report.Aggregator, log *zap.Logger, served chan error) error {
	aln, err := net.Listen("tcp", cc.String("admin"))
	if err != nil {
		return listenError("--admin", cc.String("admin"), err)
	}
	srv := &http.Server{Handler: admin.Handler(admin.Options{
		Active: p.Active, Faults: set, AllowFaults: true, Logger: log,
		Metrics:     promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		Connections: p.Connections, Clients: clients.Summaries,
	}, false), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(aln)
	defer srv.Close()
	addr := "http://" + aln.Addr().String()
	host, port, _ := net.SplitHostPort(listen)
	fmt.Fprintf(stdout, "\nStill running (Ctrl-C stops it). The proxy: %s; its admin API: %s. Try:\n", listen, addr)
	fmt.Fprintf(stdout, "   mariadb --host %s --port %s --user %s --skip-ssl   # through the proxy (the embedded server answers any query)\n",
		host, port, cc.String("user"))
	fmt.Fprintf(stdout, "   curl %s/connections\n   curl %s/clients\n   curl -s %s/metrics | grep abortscope_connections_ended_total\n", addr, addr, addr)
	fmt.Fprintf(stdout, "   abortscope fault add --admin %s --action reset_server --phase result --count 1\n", addr)
	select {
	case <-ctx.Done():
		return nil
	case err := <-served:
		if errors.Is(err, proxy.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// abortedCounters reads MariaDB's Aborted_* counters at addr.
func abortedCounters(addr, user, pass string) (map[string]int64, error) {
	c, err := gmysql.Connect(addr, user, pass, "")
	if err != nil {
		return nil, err
	}
	defer c.Quit()
	r, err := c.Execute("SHOW GLOBAL STATUS LIKE 'Aborted_%'")
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for i := range r.RowNumber() {
		name, _ := r.GetString(i, 0)
		v, _ := r.GetInt(i, 1)
		out[name] = v
	}
	return out, nil
}

// embedded is the demo's MySQL-protocol server: any statement gets a
// one-row result, bigQuery a 100000-row one.
type embedded struct {
	net.Listener
	srv  *server.Server
	auth *server.InMemoryAuthenticationHandler
	big  *mysql.Result
	wg   sync.WaitGroup
}

func startEmbedded(user, pass string) (*embedded, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &embedded{Listener: ln,
		srv:  server.NewServer("5.5.5-10.11.0-abortscope-demo", mysql.DEFAULT_COLLATION_ID, mysql.AUTH_NATIVE_PASSWORD, nil, nil),
		auth: server.NewInMemoryAuthenticationHandler(mysql.AUTH_NATIVE_PASSWORD)}
	if err := e.auth.AddUser(user, pass); err != nil {
		ln.Close()
		return nil, err
	}
	rows := make([][]any, 100000)
	filler := strings.Repeat("x", 200)
	for i := range rows {
		rows[i] = []any{int64(i + 1), filler}
	}
	rs, err := mysql.BuildSimpleTextResultset([]string{"seq", "filler"}, rows)
	if err != nil {
		ln.Close()
		return nil, err
	}
	e.big = mysql.NewResult(rs)
	e.wg.Add(1)
	go e.serve()
	return e, nil
}

func (e *embedded) serve() {
	defer e.wg.Done()
	for {
		nc, err := e.Accept()
		if err != nil {
			return
		}
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			defer nc.Close()
			c, err := e.srv.NewCustomizedConn(nc, e.auth, e)
			if err != nil {
				return
			}
			for c.HandleCommand() == nil {
			}
		}()
	}
}

// Close stops the server and waits for its connections.
func (e *embedded) Close() error {
	err := e.Listener.Close()
	e.wg.Wait()
	return err
}

func (e *embedded) UseDB(string) error { return nil }

func (e *embedded) HandleQuery(q string) (*mysql.Result, error) {
	if q == bigQuery {
		return e.big, nil
	}
	rs, err := mysql.BuildSimpleTextResultset([]string{"1"}, [][]any{{int64(1)}})
	if err != nil {
		return nil, err
	}
	return mysql.NewResult(rs), nil
}

func (e *embedded) HandleFieldList(string, string) ([]*mysql.Field, error) { return nil, nil }
func (e *embedded) HandleStmtPrepare(string) (int, int, any, error) {
	return 0, 0, nil, errors.New("the demo server prepares no statements")
}
func (e *embedded) HandleStmtExecute(any, string, []any) (*mysql.Result, error) {
	return nil, errors.New("the demo server prepares no statements")
}
func (e *embedded) HandleStmtClose(any) error { return nil }
func (e *embedded) HandleOtherCommand(cmd byte, _ []byte) error {
	return mysql.NewError(mysql.ER_UNKNOWN_ERROR, fmt.Sprintf("the demo server does not handle command %d", cmd))
}
