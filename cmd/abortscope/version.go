package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
)

// buildVersion is where a binary came from, as `abortscope version` tells
// it: the version (the -ldflags main.version when set, else the module
// version the go command stamped), the VCS state it was built from, and
// the toolchain and platform.
type buildVersion struct {
	Version  string
	Module   string // module path and version, e.g. github.com/abortscope/abortscope (devel)
	Revision string // vcs.revision; "" when built without VCS information
	Time     string // vcs.time
	Modified string // vcs.modified: "true" when the work tree had changes
	Go       string
	Platform string // GOOS/GOARCH
}

// readBuildVersion reads bi (from debug.ReadBuildInfo; nil when the binary
// has none). ldflags is main.version: it wins when set.
func readBuildVersion(ldflags string, bi *debug.BuildInfo) buildVersion {
	v := buildVersion{Version: ldflags, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if bi.GoVersion != "" {
			v.Go = bi.GoVersion
		}
		if bi.Main.Path != "" {
			v.Module = strings.TrimSpace(bi.Main.Path + " " + bi.Main.Version)
		}
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.time":
				v.Time = s.Value
			case "vcs.modified":
				v.Modified = s.Value
			}
		}
	}
	if v.Version == "" {
		v.Version = "dev" // go run, go test, or a build from outside a module
	}
	return v
}

// currentBuildVersion is this binary's.
func currentBuildVersion() buildVersion {
	bi, _ := debug.ReadBuildInfo()
	return readBuildVersion(version, bi)
}

// appVersion is what --version prints after "abortscope version".
func appVersion() string { return currentBuildVersion().Version }

// write prints v for a person, one field a line.
func (v buildVersion) write(w io.Writer) error {
	unknown := func(s string) string {
		if s == "" {
			return "unknown (no VCS information in the binary: go run, -buildvcs=false, or built outside a git work tree)"
		}
		return s
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "abortscope %s\n", v.Version)
	if v.Module != "" {
		fmt.Fprintf(tw, "module\t%s\n", v.Module)
	}
	fmt.Fprintf(tw, "revision\t%s\n", unknown(v.Revision))
	if v.Revision != "" {
		fmt.Fprintf(tw, "time\t%s\n", unknown(v.Time))
		fmt.Fprintf(tw, "modified\t%s\n", unknown(v.Modified))
	}
	fmt.Fprintf(tw, "go\t%s\n", v.Go)
	fmt.Fprintf(tw, "platform\t%s\n", v.Platform)
	return tw.Flush()
}

func versionCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, the commit it was built from, and the Go toolchain and platform",
		Description: "The version is the one make build sets (-ldflags \"-X main.version=$(git describe --tags --always --dirty)\"),\n" +
			"else the module version the go command stamped, else dev. revision, time and modified are the\n" +
			"git commit the binary was built from and whether the work tree had changes (none with\n" +
			"go run, or with GOFLAGS=-buildvcs=false). --version prints the version alone.\n\n" +
			"Examples:\n" +
			"   abortscope version\n" +
			"   abortscope --version",
		Action: func(cc *cli.Context) error {
			return currentBuildVersion().write(stdout)
		},
	}
}
