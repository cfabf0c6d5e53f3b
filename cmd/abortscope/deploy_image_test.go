package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

// The container image (Dockerfile) checked against the compose file and
// go.mod, and a reader of Dockerfiles as far as the checks need one.

// TestDeployDockerfile: the image builds the binary the way the README
// says, runs it as the user the token secret is given to, exposes the ports
// the compose file publishes and checks the health of the admin API there
// with abortscope healthcheck.
func TestDeployDockerfile(t *testing.T) {
	d := loadDeployment(t)
	df := d.docker
	if len(df.stages) < 2 {
		t.Fatalf("Dockerfile: %d stages, want a build stage and a small final one", len(df.stages))
	}
	build, final := df.stages[0], df.stages[len(df.stages)-1]

	// The builder's Go must be able to build go.mod's go line.
	m := regexp.MustCompile(`^golang:(\d+)\.(\d+)`).FindStringSubmatch(build.image)
	if m == nil {
		t.Fatalf("Dockerfile: build stage FROM %q, want golang:1.N…", build.image)
	}
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	g := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindSubmatch(gomod)
	if g == nil {
		t.Fatal("go.mod has no go line")
	}
	if cmpMinor(m[1], m[2], string(g[1]), string(g[2])) < 0 {
		t.Errorf("Dockerfile builds with %s, older than go.mod's go %s.%s", build.image, g[1], g[2])
	}

	// go build of the command, static, with the version stamped.
	outs := build.goBuilds()
	as, ok := outs["./cmd/abortscope"]
	if !ok {
		t.Fatalf("Dockerfile: no `go build -o … ./cmd/abortscope` in the build stage (go builds: %v)", outs)
	}
	if !strings.Contains(as.run, "CGO_ENABLED=0") || !strings.Contains(as.flags, "-trimpath") {
		t.Errorf("Dockerfile: %q: want CGO_ENABLED=0 and -trimpath (a static binary for distroless/static)", as.run)
	}
	if !regexp.MustCompile(`-X main\.version=\$\{?VERSION\}?`).MatchString(as.flags) || !build.hasArg("VERSION") {
		t.Errorf("Dockerfile: %q: want ARG VERSION and -ldflags \"-X main.version=$VERSION\"", as.run)
	}

	// The final stage: the binary, a non-root user.
	binAt := final.copiedTo(build, as.out)
	if binAt == "" {
		t.Fatalf("Dockerfile: the final stage does not COPY --from the build stage %s", as.out)
	}
	uid := df.user()
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("Dockerfile: USER %q: want a numeric non-root uid (Compose gives the token secret to that uid)", uid)
	}
	if len(final.entrypoint) == 0 || final.entrypoint[0] != binAt {
		t.Errorf("Dockerfile: ENTRYPOINT %q, want [%q]", final.entrypoint, binAt)
	}

	// EXPOSE: the ports of --listen and --admin.
	var want []string
	for _, flag := range []string{"listen", "admin"} {
		v, _ := d.serve.get(flag)
		_, port := hostPort(t, flag, v)
		want = append(want, strconv.Itoa(int(port)))
	}
	slices.Sort(want)
	got := slices.Clone(final.expose)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("Dockerfile: EXPOSE %v, want the ports of --listen and --admin %v", final.expose, want)
	}

	// HEALTHCHECK: abortscope healthcheck on /healthz of --admin's port,
	// failing on its own --timeout before Docker's kills it.
	wantCmd := fmt.Sprintf(`[%q, "healthcheck", "--url", "http://127.0.0.1:PORT/healthz"]`, binAt)
	if len(final.healthcheck) < 2 || final.healthcheck[0] != binAt {
		t.Fatalf("Dockerfile: HEALTHCHECK CMD %q, want %s", final.healthcheck, wantCmd)
	}
	hcURL, hcTimeout, err := healthcheckFlags(final.healthcheck[1:])
	if err != nil {
		t.Fatalf("Dockerfile: HEALTHCHECK CMD %q: %v; want %s", final.healthcheck, err, wantCmd)
	}
	u, err := url.Parse(hcURL)
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := d.serve.get("admin")
	_, adminPort := hostPort(t, "admin", admin)
	if u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() != strconv.Itoa(int(adminPort)) || u.Path != "/healthz" {
		t.Errorf("Dockerfile: HEALTHCHECK checks %s, want http://127.0.0.1:%d/healthz (--admin %s)", u, adminPort, admin)
	}
	dockerTimeout := 30 * time.Second // Docker's default
	if v, ok := final.healthcheckOpts["timeout"]; ok {
		if dockerTimeout, err = time.ParseDuration(v); err != nil {
			t.Fatalf("Dockerfile: HEALTHCHECK --timeout=%s: %v", v, err)
		}
	}
	if hcTimeout >= dockerTimeout {
		t.Errorf("Dockerfile: abortscope healthcheck --timeout %s is not below HEALTHCHECK --timeout=%s: Docker would kill the check before it says why it failed",
			hcTimeout, dockerTimeout)
	}

	// The events directory: the image's user owns it, so the named volume
	// mounted there starts owned by it.
	events, _ := d.serve.get("events")
	if owner := final.copyOwner(path.Dir(events)); owner != uid && !strings.HasPrefix(owner, uid+":") {
		t.Errorf("Dockerfile: %s is owned by %q in the image, want USER %s (serve writes --events %s there)", path.Dir(events), owner, uid, events)
	}

	// The build context keeps secrets out.
	ignore, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Fields(string(ignore)), ".env") {
		t.Error(".dockerignore does not leave out .env, where the staging tokens are")
	}
}

// healthcheckFlags runs args (the words after the binary in HEALTHCHECK) as
// abortscope's command line, with the healthcheck command's action
// replaced: they must name that command, with flags it has and values it
// takes, and no argument. It returns the URL the check would GET (host:port
// resolved as the command does) and its timeout.
func healthcheckFlags(args []string) (string, time.Duration, error) {
	argv := append([]string{"abortscope"}, args...)
	app := newApp(argv, io.Discard, io.Discard, "test")
	var target string
	var timeout time.Duration
	ran := false
	for _, c := range app.Commands {
		if c.Name != "healthcheck" {
			continue
		}
		c.Action = func(cc *cli.Context) error {
			if cc.NArg() > 0 {
				return fmt.Errorf("unexpected argument %q", cc.Args().First())
			}
			ran = true
			timeout = cc.Duration("timeout")
			var err error
			target, err = healthzURL(cc.String("url"))
			return err
		}
	}
	if err := app.Run(argv); err != nil {
		return "", 0, err
	}
	if !ran {
		return "", 0, errors.New("it does not run abortscope healthcheck")
	}
	return target, timeout, nil
}

// cmpMinor compares two major.minor versions.
func cmpMinor(aMaj, aMin, bMaj, bMin string) int {
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	if c := n(aMaj) - n(bMaj); c != 0 {
		return c
	}
	return n(aMin) - n(bMin)
}

// Readers of the deployment's files for deploy_test.go: the Dockerfile (as
// far as the checks need it), Prometheus's configuration and Grafana's
// provisioning, only the fields the checks read.

// dockerfile is a Dockerfile's stages.
type dockerfile struct {
	stages []dockerStage
}

type dockerStage struct {
	image, name string
	args        []string // ARG names
	runs        []string // RUN commands, continuation lines joined
	copies      []dockerCopy
	users       []string
	expose      []string
	entrypoint  []string
	healthcheck []string // the CMD of HEALTHCHECK, exec form
	// healthcheckOpts are HEALTHCHECK's options: "timeout" → "3s".
	healthcheckOpts map[string]string
}

type dockerCopy struct {
	from, chown string
	src         []string
	dst         string
}

// readDockerfile reads the instructions deploy_test.go checks; any other is
// skipped. Exec forms (JSON arrays) are required where a form matters.
func readDockerfile(file string) (dockerfile, error) {
	var df dockerfile
	data, err := os.ReadFile(file)
	if err != nil {
		return df, err
	}
	var logical []string
	var cur strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue // a comment, also inside a continued instruction
		}
		if body, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(trimmed)
		logical = append(logical, cur.String())
		cur.Reset()
	}
	for _, l := range logical {
		instr, rest, _ := strings.Cut(l, " ")
		instr, rest = strings.ToUpper(instr), strings.TrimSpace(rest)
		if instr == "FROM" {
			f := strings.Fields(rest)
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				f = f[1:]
			}
			if len(f) == 0 {
				return df, fmt.Errorf("%s: FROM without an image", file)
			}
			st := dockerStage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			df.stages = append(df.stages, st)
			continue
		}
		if len(df.stages) == 0 {
			if instr == "ARG" {
				continue // an ARG before the first FROM
			}
			return df, fmt.Errorf("%s: %s before FROM", file, instr)
		}
		st := &df.stages[len(df.stages)-1]
		switch instr {
		case "ARG":
			name, _, _ := strings.Cut(rest, "=")
			st.args = append(st.args, name)
		case "RUN":
			st.runs = append(st.runs, rest)
		case "COPY":
			c := dockerCopy{}
			f := strings.Fields(rest)
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				k, v, _ := strings.Cut(strings.TrimPrefix(f[0], "--"), "=")
				switch k {
				case "from":
					c.from = v
				case "chown":
					c.chown = v
				}
				f = f[1:]
			}
			if len(f) < 2 {
				return df, fmt.Errorf("%s: COPY %s: want sources and a destination", file, rest)
			}
			c.src, c.dst = f[:len(f)-1], f[len(f)-1]
			st.copies = append(st.copies, c)
		case "USER":
			st.users = append(st.users, rest)
		case "EXPOSE":
			for _, p := range strings.Fields(rest) {
				p, _, _ = strings.Cut(p, "/") // 3307/tcp
				st.expose = append(st.expose, p)
			}
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &st.entrypoint); err != nil {
				return df, fmt.Errorf("%s: ENTRYPOINT %s: want the exec form: %w", file, rest, err)
			}
		case "HEALTHCHECK":
			f := rest
			st.healthcheckOpts = map[string]string{}
			for strings.HasPrefix(f, "--") {
				var opt string
				opt, f, _ = strings.Cut(f, " ")
				k, v, _ := strings.Cut(strings.TrimPrefix(opt, "--"), "=")
				st.healthcheckOpts[k] = v
				f = strings.TrimSpace(f)
			}
			cmd, ok := strings.CutPrefix(f, "CMD ")
			if !ok {
				return df, fmt.Errorf("%s: HEALTHCHECK %s: want CMD [...]", file, rest)
			}
			if err := json.Unmarshal([]byte(strings.TrimSpace(cmd)), &st.healthcheck); err != nil {
				return df, fmt.Errorf("%s: HEALTHCHECK CMD %s: want the exec form (distroless has no shell): %w", file, cmd, err)
			}
		}
	}
	return df, nil
}

// user is the final stage's USER, without its group ("" for root by default).
func (df dockerfile) user() string {
	final := df.stages[len(df.stages)-1]
	if len(final.users) == 0 {
		return ""
	}
	u, _, _ := strings.Cut(final.users[len(final.users)-1], ":")
	return u
}

func (st dockerStage) hasArg(name string) bool {
	for _, a := range st.args {
		if a == name {
			return true
		}
	}
	return false
}

// goBuild is one `go build` of a RUN.
type goBuild struct {
	run   string // the whole RUN
	flags string // the go build command
	out   string // -o
}

// goBuilds finds the `go build -o OUT … PKG` commands of the stage's RUNs,
// by package.
func (st dockerStage) goBuilds() map[string]goBuild {
	builds := map[string]goBuild{}
	for _, run := range st.runs {
		for _, part := range strings.Split(run, "&&") {
			i := strings.Index(part, "go build")
			if i < 0 {
				continue
			}
			// The arguments: split on spaces, quotes kept out (the
			// -ldflags value is one quoted word).
			cmd := strings.TrimSpace(part[i:])
			var words []string
			var w strings.Builder
			quoted := false
			for _, r := range cmd + " " {
				switch {
				case r == '"':
					quoted = !quoted
				case r == ' ' && !quoted:
					if w.Len() > 0 {
						words = append(words, w.String())
						w.Reset()
					}
				default:
					w.WriteRune(r)
				}
			}
			b := goBuild{run: run, flags: cmd}
			for j := 2; j < len(words); j++ {
				switch {
				case words[j] == "-o" && j+1 < len(words):
					b.out = words[j+1]
					j++
				case strings.HasPrefix(words[j], "-"):
				default:
					builds[words[j]] = b
				}
			}
		}
	}
	return builds
}

// copiedTo is where the stage copies file out of stage from, or "".
func (st dockerStage) copiedTo(from dockerStage, file string) string {
	for _, c := range st.copies {
		if c.from == "" || (c.from != from.name && c.from != "0") {
			continue
		}
		for _, s := range c.src {
			if path.Clean(s) == path.Clean(file) {
				if strings.HasSuffix(c.dst, "/") {
					return path.Join(c.dst, path.Base(file))
				}
				return c.dst
			}
		}
	}
	return ""
}

// copyOwner is the --chown of the COPY that makes dir, or "".
func (st dockerStage) copyOwner(dir string) string {
	for _, c := range st.copies {
		if path.Clean(c.dst) == path.Clean(dir) {
			return c.chown
		}
	}
	return ""
}
