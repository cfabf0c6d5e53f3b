package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	composecli "github.com/compose-spec/compose-go/v2/cli"
	composetypes "github.com/compose-spec/compose-go/v2/types"
	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"
)

// The staging deployment (docker-compose.yml, Dockerfile, deploy/) checked
// against the program it deploys: serve's real flags and the ports they
// open (here), the image (deploy_image_test.go), Prometheus and Grafana
// (deploy_monitoring_test.go), and the metrics a running proxy exports
// (deploy_metrics_test.go). No Docker engine is needed: the compose file is
// loaded the way Docker Compose v2 loads it (compose-go: schema,
// interpolation, defaults).

// repoRoot is where the deployment files are, from this package's directory.
var repoRoot = filepath.Join("..", "..")

// -X main.version=… in the Dockerfile sets this variable: it must stay a
// package-level string.
var _ *string = &version

// deployment is the parsed set of files.
type deployment struct {
	project *composetypes.Project
	docker  dockerfile
	prom    promConfig
	ds      grafanaDatasources
	dashes  grafanaProviders
	board   grafanaDashboard
	serve   serveArgs // abortscope's command in the compose file
}

func loadDeployment(t *testing.T) *deployment {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	d := &deployment{}
	// No OS environment and no .env: the file must load as it stands, and
	// an operator's real tokens stay out of the test.
	opts, err := composecli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		composecli.WithWorkingDirectory(root), composecli.WithEnv(nil), composecli.WithResolvedPaths(true))
	if err != nil {
		t.Fatal(err)
	}
	if d.project, err = opts.LoadProject(context.Background()); err != nil {
		t.Fatalf("docker-compose.yml does not load as Docker Compose v2 would load it: %v", err)
	}
	for _, name := range []string{"mariadb", "abortscope", "prometheus", "grafana"} {
		if _, ok := d.project.Services[name]; !ok {
			t.Fatalf("docker-compose.yml has no service %q (services: %v)", name, d.project.ServiceNames())
		}
	}
	if d.serve, err = parseServeArgs(d.project.Services["abortscope"].Command); err != nil {
		t.Fatalf("docker-compose.yml, abortscope's command: %v", err)
	}
	if d.docker, err = readDockerfile(filepath.Join(root, "Dockerfile")); err != nil {
		t.Fatal(err)
	}
	readYAML(t, filepath.Join(root, "deploy/prometheus/prometheus.yml"), &d.prom)
	readYAML(t, filepath.Join(root, "deploy/grafana/provisioning/datasources/prometheus.yml"), &d.ds)
	readYAML(t, filepath.Join(root, "deploy/grafana/provisioning/dashboards/abortscope.yml"), &d.dashes)
	data, err := os.ReadFile(filepath.Join(root, "deploy/grafana/dashboards/abortscope.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &d.board); err != nil {
		t.Fatalf("deploy/grafana/dashboards/abortscope.json: %v", err)
	}
	return d
}

func readYAML(t *testing.T, file string, v any) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// serveArgs is serve's command line as the compose file gives it.
type serveArgs struct {
	flags []serveFlag
}

type serveFlag struct {
	name, value string
	hasValue    bool
}

func (a serveArgs) get(name string) (string, bool) {
	for _, f := range a.flags {
		if f.name == name {
			return f.value, true
		}
	}
	return "", false
}

// serveFlagDefs are serve's flags by every name they answer to.
func serveFlagDefs() map[string]cli.Flag {
	defs := map[string]cli.Flag{}
	for _, f := range serveCommand(io.Discard, io.Discard).Flags {
		for _, n := range f.Names() {
			defs[n] = f
		}
	}
	return defs
}

// isBoolFlag: a flag that takes no separate value word.
func isBoolFlag(f cli.Flag) bool {
	_, ok := f.(*cli.BoolFlag)
	return ok
}

// parseServeArgs reads ["serve", "--flag=value", "--flag", "value",
// "--bool", …] as urfave/cli does, refusing what serve would not take.
func parseServeArgs(cmd []string) (serveArgs, error) {
	var a serveArgs
	if len(cmd) == 0 || cmd[0] != "serve" {
		return a, fmt.Errorf("%q does not run serve", cmd)
	}
	defs := serveFlagDefs()
	for i := 1; i < len(cmd); i++ {
		arg := cmd[i]
		if !strings.HasPrefix(arg, "-") {
			return a, fmt.Errorf("%q is not a flag: serve takes flags only", arg)
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		def, ok := defs[name]
		if !ok {
			return a, fmt.Errorf("--%s is not a flag of abortscope serve", name)
		}
		if !hasValue && !isBoolFlag(def) {
			if i+1 >= len(cmd) {
				return a, fmt.Errorf("--%s needs a value", name)
			}
			i++
			value, hasValue = cmd[i], true
		}
		a.flags = append(a.flags, serveFlag{name: def.Names()[0], value: value, hasValue: hasValue})
	}
	return a, nil
}

// args renders the flags back, with some values replaced (for running the
// same command line on loopback).
func (a serveArgs) args(replace map[string]string) []string {
	out := []string{"abortscope", "serve"}
	for _, f := range a.flags {
		v, hasValue := f.value, f.hasValue
		if r, ok := replace[f.name]; ok {
			v, hasValue = r, true
		}
		if hasValue {
			out = append(out, "--"+f.name+"="+v)
		} else {
			out = append(out, "--"+f.name)
		}
	}
	return out
}

// hostPort splits a flag's host:port.
func hostPort(t *testing.T, flag, addr string) (string, uint32) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("--%s %q: %v", flag, addr, err)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		t.Fatalf("--%s %q: port: %v", flag, addr, err)
	}
	return host, uint32(n)
}

// secretPath is where a service's secret lands in its container.
func secretPath(s composetypes.ServiceSecretConfig) string {
	switch {
	case s.Target == "":
		return "/run/secrets/" + s.Source
	case path.IsAbs(s.Target):
		return s.Target
	}
	return "/run/secrets/" + s.Target
}

// secretAt finds the secret svc mounts at p.
func secretAt(svc composetypes.ServiceConfig, p string) (composetypes.ServiceSecretConfig, bool) {
	for _, s := range svc.Secrets {
		if secretPath(s) == p {
			return s, true
		}
	}
	return composetypes.ServiceSecretConfig{}, false
}

// mountAt finds the volume or bind svc mounts at target.
func mountAt(svc composetypes.ServiceConfig, target string) (composetypes.ServiceVolumeConfig, bool) {
	for _, v := range svc.Volumes {
		if path.Clean(v.Target) == path.Clean(target) {
			return v, true
		}
	}
	return composetypes.ServiceVolumeConfig{}, false
}

// hostFile maps a path in svc's container to the repository file bound
// there, or "".
func hostFile(svc composetypes.ServiceConfig, p string) string {
	for _, v := range svc.Volumes {
		if v.Type != composetypes.VolumeTypeBind {
			continue
		}
		if rel, err := filepath.Rel(v.Target, p); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.Join(v.Source, rel)
		}
	}
	return ""
}

// cmdFlag finds --name=value (or --name value) in a container's command.
func cmdFlag(cmd []string, name string) (string, bool) {
	for i, a := range cmd {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
		if a == name && i+1 < len(cmd) {
			return cmd[i+1], true
		}
	}
	return "", false
}

// TestDeployCompose: docker-compose.yml runs serve with flags serve has,
// publishes the ports it listens on (on the host's loopback only), gives it
// the admin token a non-loopback --admin requires in a file abortscope will
// accept, and runs MariaDB with the diagnostics abortscope is checked
// against; where Docker Compose v2 is installed, `docker compose config -q`
// accepts the file too.
func TestDeployCompose(t *testing.T) {
	d := loadDeployment(t)
	p := d.project
	as := p.Services["abortscope"]
	defs := serveFlagDefs()

	// Every published port of every service: the host's loopback only.
	for _, name := range p.ServiceNames() {
		for _, port := range p.Services[name].Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("service %s publishes port %d on %q: publish on 127.0.0.1 only", name, port.Target, port.HostIP)
			}
		}
	}
	published := func(svc composetypes.ServiceConfig, target uint32) bool {
		for _, port := range svc.Ports {
			if port.Target == target && port.Published == strconv.Itoa(int(target)) && port.HostIP == "127.0.0.1" {
				return true
			}
		}
		return false
	}

	// --listen and --admin: all interfaces of the container, each port
	// published as itself.
	for _, flag := range []string{"listen", "admin"} {
		addr, ok := d.serve.get(flag)
		if !ok {
			t.Errorf("abortscope's command has no --%s", flag)
			continue
		}
		host, port := hostPort(t, flag, addr)
		if host != "0.0.0.0" && host != "" {
			t.Errorf("--%s %s: in a container it must listen on 0.0.0.0 for the published port to reach it", flag, addr)
		}
		if !published(as, port) {
			t.Errorf("--%s %s: port %d is not published as 127.0.0.1:%d:%d (ports: %+v)", flag, addr, port, port, port, as.Ports)
		}
	}
	// serve refuses a non-loopback --admin without these.
	if _, ok := d.serve.get("admin-allow-remote"); !ok {
		t.Error("--admin beyond loopback needs --admin-allow-remote")
	}
	tokenFile, ok := d.serve.get("admin-token-file")
	if !ok {
		t.Fatal("--admin beyond loopback needs --admin-token-file (a secret)")
	}
	tok, ok := secretAt(as, tokenFile)
	if !ok {
		t.Fatalf("--admin-token-file %s: the abortscope service mounts no secret there (secrets: %+v)", tokenFile, as.Secrets)
	}
	// abortscope refuses a token file others may read (admin_token.go);
	// Compose honours uid and mode for secrets it copies in (from the
	// environment), not for the bind mounts of file secrets.
	if src := p.Secrets[tok.Source]; src.Environment == "" {
		t.Errorf("secret %s: give it from the environment: a file secret is bind-mounted with the host file's owner and mode, which Compose cannot set", tok.Source)
	}
	if tok.Mode == nil || *tok.Mode&0o077 != 0 {
		t.Errorf("secret %s in abortscope: mode %v lets others read it; abortscope refuses such a token file", tok.Source, tok.Mode)
	}
	if uid := d.docker.user(); tok.UID != uid {
		t.Errorf("secret %s in abortscope: uid %q, but the image runs as %q", tok.Source, tok.UID, uid)
	}

	upstream, _ := d.serve.get("upstream")
	if host, port := hostPort(t, "upstream", upstream); host != "mariadb" || port != 3306 {
		t.Errorf("--upstream %s: want the mariadb service, mariadb:3306", upstream)
	}
	if dep, ok := as.DependsOn["mariadb"]; !ok || dep.Condition != composetypes.ServiceConditionHealthy {
		t.Errorf("abortscope should wait for mariadb to be healthy (depends_on: %+v)", as.DependsOn)
	}

	// --events on a volume of its own, in the directory the image prepares.
	if events, ok := d.serve.get("events"); !ok || events == "-" {
		t.Error("--events: give a file on a volume, so the events outlive the container and report/correlate can read them")
	} else if m, ok := mountAt(as, path.Dir(events)); !ok || m.Type != composetypes.VolumeTypeVolume {
		t.Errorf("--events %s: no named volume at %s", events, path.Dir(events))
	}

	// Docker stops a container with SIGTERM, then SIGKILL after
	// stop_grace_period: serve needs --shutdown-timeout and a moment to
	// write the last events.
	shutdown := defs["shutdown-timeout"].(*cli.DurationFlag).Value
	if v, ok := d.serve.get("shutdown-timeout"); ok {
		var err error
		if shutdown, err = time.ParseDuration(v); err != nil {
			t.Fatalf("--shutdown-timeout %q: %v", v, err)
		}
	}
	if as.StopGracePeriod == nil || time.Duration(*as.StopGracePeriod) <= shutdown {
		t.Errorf("abortscope's stop_grace_period %v must exceed --shutdown-timeout %v, or Docker kills it before busy connections finish and events are written", as.StopGracePeriod, shutdown)
	}

	// The build: this Dockerfile, with VERSION.
	if as.Build == nil || filepath.Clean(as.Build.Context) != filepath.Clean(mustAbs(t, repoRoot)) ||
		(as.Build.Dockerfile != "" && as.Build.Dockerfile != "Dockerfile") {
		t.Errorf("abortscope should build from the repository's Dockerfile (build: %+v)", as.Build)
	} else if _, ok := as.Build.Args["VERSION"]; !ok {
		t.Errorf("abortscope's build gives no VERSION arg (the Dockerfile's -X main.version)")
	}

	// MariaDB: the diagnostics abortscope's verdicts are checked against,
	// and an error log on a volume.
	db := p.Services["mariadb"]
	if !strings.HasPrefix(db.Image, "mariadb:11.8") {
		t.Errorf("mariadb image %q, want mariadb:11.8", db.Image)
	}
	if v, _ := cmdFlag(db.Command, "--log-warnings"); v != "4" {
		t.Errorf("mariadb's command %q: want --log-warnings=4 (the Could not read/write packet warnings)", db.Command)
	}
	if logFile, ok := cmdFlag(db.Command, "--log-error"); !ok || !path.IsAbs(logFile) {
		t.Errorf("mariadb's command %q: want --log-error=/an/absolute/file", db.Command)
	} else if m, ok := mountAt(db, path.Dir(logFile)); !ok || m.Type != composetypes.VolumeTypeVolume {
		t.Errorf("--log-error %s: no named volume at %s to keep and read it from", logFile, path.Dir(logFile))
	}
	if db.HealthCheck == nil || len(db.HealthCheck.Test) == 0 || db.HealthCheck.Disable {
		t.Error("mariadb has no healthcheck (abortscope waits for it)")
	}
	if len(db.Ports) > 0 {
		t.Errorf("mariadb publishes %+v: clients are meant to go through abortscope", db.Ports)
	}

	composeCLIConfig(t)
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// composeCLIConfig runs `docker compose config -q` on the file where a
// Docker Compose v2 is installed (CI has none: the compose-go load of
// loadDeployment stands for it). Compose v1 (docker-compose 1.x, Debian
// 12's package) predates the top-level name and secrets from the
// environment and would refuse the file, so it is not used.
func composeCLIConfig(t *testing.T) {
	t.Helper()
	root := mustAbs(t, repoRoot)
	ran := false
	for _, c := range [][]string{{"docker", "compose"}, {"docker-compose"}} {
		if _, err := exec.LookPath(c[0]); err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		out, err := exec.CommandContext(ctx, c[0], append(c[1:], "version", "--short")...).Output()
		cancel()
		if err != nil {
			t.Logf("%s: no Compose here (%v)", strings.Join(c, " "), err)
			continue
		}
		v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
		if major, _, _ := strings.Cut(v, "."); major == "1" || major == "0" {
			t.Logf("%s %s: Compose v1 cannot read secrets from the environment; not used", strings.Join(c, " "), v)
			continue
		}
		ctx, cancel = context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, c[0], append(c[1:], "--project-directory", root, "-f", filepath.Join(root, "docker-compose.yml"), "config", "-q")...)
		cmd.Env = append(os.Environ(), "ABORTSCOPE_ADMIN_TOKEN=test-token", "MARIADB_ROOT_PASSWORD=test-password")
		out, err = cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("%s config -q (Compose %s): %v\n%s", strings.Join(c, " "), v, err, out)
		}
		ran = true
	}
	if !ran {
		t.Log("no Docker Compose v2 on PATH: docker-compose.yml was checked by compose-go's load only")
	}
}
