package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/abortscope/abortscope/admin"
	"github.com/abortscope/abortscope/events"
	"github.com/abortscope/abortscope/explain"
	"github.com/abortscope/abortscope/internal/procnet"
	"github.com/abortscope/abortscope/internal/redact"
	"github.com/abortscope/abortscope/metrics"
	"github.com/abortscope/abortscope/proxy"
	"github.com/abortscope/abortscope/report"
)

func serveCommand(stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "relay clients to the upstream server and record how each connection ends",
		Description: "Listens for MariaDB/MySQL clients on --listen and relays each to --upstream. When a connection\n" +
			"ends, writes one JSON line to --events: who the client was, how and why it ended, and what to change.\n" +
			"The admin API (--admin, loopback only unless allowed) serves /connections, /clients, /metrics,\n" +
			"/healthz and, with --allow-faults, /faults. SIGHUP reopens --events and reloads --tls-cert;\n" +
			"SIGINT or SIGTERM lets busy connections finish for --shutdown-timeout.\n\n" +
			"Examples:\n" +
			"   abortscope serve --upstream 127.0.0.1:3306 --events /var/log/abortscope/events.jsonl\n" +
			"   abortscope serve --listen 0.0.0.0:3307 --upstream db.internal:3306 --log-format json\n" +
			"   abortscope serve --allow-faults --fault 'action=reset_server,phase=result,after_bytes=65536,count=1'\n" +
			"   abortscope serve --client-tls terminate --tls-cert proxy.pem --tls-key proxy-key.pem",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:3307", Usage: "the `HOST:PORT` clients connect to"},
			&cli.StringFlag{Name: "upstream", Value: "127.0.0.1:3306", Usage: "the MariaDB/MySQL server's `HOST:PORT`"},
			&cli.StringFlag{Name: "events", Value: "-", Usage: "`FILE` that receives one JSON line per ended connection (appended, created 0600, reopened on SIGHUP); - for stdout"},
			&cli.StringFlag{Name: "log-format", Value: "console", Usage: "`FORMAT` of the human log on stderr: console or json"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "`LEVEL` of the log: debug, info, warn or error"},
			&cli.StringFlag{Name: "admin", Value: "127.0.0.1:9307", Usage: "the admin HTTP API's `HOST:PORT` (loopback only); empty disables"},
			&cli.BoolFlag{Name: "admin-allow-remote", Usage: "allow a non-loopback --admin address (requires --admin-token or --admin-token-file)"},
			&cli.BoolFlag{Name: "log-queries", Usage: "put the last statement's text (truncated) in each event"},
			&cli.IntFlag{Name: "log-queries-max", Value: 1024, Usage: "`BYTES` of statement text kept with --log-queries"},
			&cli.BoolFlag{Name: "redact", Usage: "mask the literals (strings, numbers) of statement text in events and views with ?"},
			&cli.BoolFlag{Name: "resolve-clients", Value: true, Usage: "name the local process behind each loopback client (client_pid, client_cmd) through /proc"},
			&cli.DurationFlag{Name: "dial-timeout", Value: 5 * time.Second, Usage: "how long (`DURATION`) to try connecting to the upstream"},
			&cli.DurationFlag{Name: "shutdown-timeout", Value: 30 * time.Second, Usage: "on SIGINT/SIGTERM, how long (`DURATION`) busy connections may finish before they are closed"},
		}, append(append(append(append(faultFlags(), proxyProtocolFlags()...), tlsFlags()...), limitFlags()...), adminTokenFlags()...)...),
		Action: func(cc *cli.Context) error {
			return serve(cc, stdout, stderr)
		},
	}
}

func newLogger(format, level string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, asUsage(reword(err, "--log-level %q: want debug, info, warn or error", level))
	}
	cfg := zap.NewProductionEncoderConfig()
	cfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(cfg)
	case "console":
		cfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(cfg)
	default:
		return nil, usagef("--log-format %q: want console or json", format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(w), lvl)), nil
}

func serve(cc *cli.Context, stdout, stderr io.Writer) error {
	log, err := newLogger(cc.String("log-format"), cc.String("log-level"), stderr)
	if err != nil {
		return err
	}
	defer log.Sync()

	if err := checkHostPort("--listen", cc.String("listen"), "127.0.0.1:3307"); err != nil {
		return err
	}
	if err := checkHostPort("--upstream", cc.String("upstream"), "127.0.0.1:3306"); err != nil {
		return err
	}
	adminAddr := cc.String("admin")
	token, err := adminToken(cc)
	if err != nil {
		return err
	}
	if adminAddr != "" {
		if err := checkHostPort("--admin", adminAddr, "127.0.0.1:9307 (or --admin '' for no admin API)"); err != nil {
			return err
		}
		loopErr := admin.CheckLoopback(adminAddr)
		switch {
		case loopErr != nil && !cc.Bool("admin-allow-remote"):
			// The admin API arms faults and names every client.
			return asUsage(reword(loopErr, "--admin %s is not a loopback address: give one such as 127.0.0.1:9307, "+
				"or expose the admin API with --admin-allow-remote and --admin-token-file", adminAddr))
		case loopErr != nil && token == "":
			// Beyond loopback, anyone who reaches the port could arm
			// faults and read client identities.
			return usagef("--admin %s is not a loopback address: give --admin-token or --admin-token-file too", adminAddr)
		}
	}

	faultSet, faultsOn, err := setUpFaults(cc, log)
	if err != nil {
		return err
	}

	var eventsOut io.Writer = stdout
	var eventFile *eventsFile // reopened on SIGHUP; nil for stdout
	if path := cc.String("events"); path != "-" {
		if eventFile, err = openEventsFile(path, log); err != nil {
			return eventsFileError(path, err)
		}
		defer eventFile.Close()
		eventsOut = eventFile.out()
	}
	// Events are written by a goroutine of their own: a slow reader of
	// --events - never holds up a connection's teardown.
	eventLog := events.NewWriter(eventsOut, events.WriterOptions{OnError: writeErrorLogger(log, cc.String("events"))})

	p := &proxy.Proxy{
		Upstream:    cc.String("upstream"),
		DialTimeout: cc.Duration("dial-timeout"),
		Logger:      log,
	}
	if err := setUpProxyProtocol(cc, p, log); err != nil {
		return err
	}
	if err := setUpLimits(cc, p); err != nil {
		return err
	}
	reloadTLS, err := setUpTLS(cc, p, log)
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, p, eventLog.Stats)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	clients := &report.Aggregator{} // GET /clients
	p.Annotate = explain.Annotate   // cause and advice, before the sinks see the event
	p.Events = events.Sinks{eventLog, m, clients}
	if cc.Bool("log-queries") {
		p.QueryCapture = cc.Int("log-queries-max")
	}
	if cc.Bool("redact") {
		p.Redact = redact.Literals
	}
	if cc.Bool("resolve-clients") {
		p.ResolveProcess = (&procnet.Resolver{}).Resolve // finds nothing for non-loopback clients
	}
	if faultsOn {
		p.Faults = faultSet // nil otherwise: fault injection off in the relay
	}

	ln, err := net.Listen("tcp", cc.String("listen"))
	if err != nil {
		return listenError("--listen", cc.String("listen"), err)
	}
	// A reader of --events - that goes away must cost lines, counted, not
	// the process: with SIGPIPE ignored a write to a closed pipe fails
	// with EPIPE instead of killing it.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(cc.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			// logrotate: the events file is reopened by its path, between
			// two lines (see eventsfile.go).
			if eventFile != nil {
				eventFile.reopenOnHUP(eventLog)
			}
			switch {
			case reloadTLS != nil:
				if err := reloadTLS(); err != nil {
					log.Error("SIGHUP: the TLS certificate was not reloaded; the one in use stays", zap.Error(err))
				} else {
					log.Info("SIGHUP: TLS certificate reloaded")
				}
			case eventFile == nil:
				log.Info("SIGHUP: nothing to reload")
			}
		}
	}()

	var adminSrv *http.Server
	adminErr := make(chan error, 1)
	if adminAddr != "" {
		aln, err := net.Listen("tcp", adminAddr)
		if err != nil {
			ln.Close()
			return listenError("--admin", adminAddr, err)
		}
		adminSrv = &http.Server{
			Handler: admin.Handler(admin.Options{
				Active:      p.Active,
				Faults:      faultSet,
				AllowFaults: faultsOn,
				Logger:      log,
				Metrics:     promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
				Connections: p.Connections,
				Clients:     clients.Summaries,
				Token:       token,
			}, cc.Bool("admin-allow-remote")),
			ReadHeaderTimeout: 5 * time.Second,
		}
		go func() { adminErr <- adminSrv.Serve(aln) }()
		log.Info("admin API listening", zap.String("addr", aln.Addr().String()))
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- p.Serve(ln) }()
	log.Info("abortscope listening", zap.String("listen", ln.Addr().String()), zap.String("upstream", p.Upstream))

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("stopping: closing idle connections, letting busy ones finish", zap.Duration("timeout", cc.Duration("shutdown-timeout")))
	case err := <-serveErr:
		runErr = err
	case err := <-adminErr:
		runErr = fmt.Errorf("admin API: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cc.Duration("shutdown-timeout"))
	defer cancel()
	if err := p.Shutdown(sctx); err != nil {
		log.Warn("shutdown timed out; remaining connections were closed", zap.Error(err))
	}
	if adminSrv != nil {
		adminSrv.Shutdown(sctx)
	}
	// Every connection has emitted its event; write what is queued.
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := eventLog.Close(wctx); err != nil {
		log.Error("events not all written", zap.Error(err))
	}
	if st := eventLog.Stats(); (st.Dropped > 0 || st.WriteErrors > 0) && runErr == nil {
		runErr = fmt.Errorf("writing events: %d written, %d failed writes, %d dropped", st.Written, st.WriteErrors, st.Dropped)
	}
	if errors.Is(runErr, proxy.ErrServerClosed) {
		runErr = nil
	}
	return runErr
}

// eventsFileError says why --events could not be opened, and what to do.
func eventsFileError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return reword(err, "--events %s: %v: create the directory, or give another path with --events (- for stdout)", path, err)
	case errors.Is(err, fs.ErrPermission):
		return reword(err, "--events %s: %v: run serve as a user who may write there, or give another path with --events (- for stdout)", path, err)
	}
	return fmt.Errorf("--events %s: %w", path, err)
}

// writeErrorLogger returns the events writer's OnError: the first failed
// write is logged at once, later ones at most every 10 s with their count,
// so a full disk does not flood the log.
func writeErrorLogger(log *zap.Logger, path string) func(error) {
	var last time.Time
	var since int
	return func(err error) {
		since++
		if now := time.Now(); now.Sub(last) >= 10*time.Second {
			log.Error("writing an event failed; it is lost, the next one will be tried (abortscope_events_write_errors_total)",
				zap.String("events", path), zap.Error(err), zap.Int("failed_since_last_report", since))
			last, since = now, 0
		}
	}
}
