package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestReadBuildVersion: the -ldflags version wins, else the module's
// stamped version, else dev; the VCS fields come from the build settings.
func TestReadBuildVersion(t *testing.T) {
	stamped := &debug.BuildInfo{
		GoVersion: "go1.99.1",
		Main:      debug.Module{Path: "github.com/abortscope/abortscope", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{
			{Key: "GOOS", Value: "linux"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "8b8275812345"},
			{Key: "vcs.time", Value: "2026-11-30T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	devel := &debug.BuildInfo{GoVersion: "go1.99.1", Main: debug.Module{Path: "github.com/abortscope/abortscope", Version: "(devel)"}}
	for _, tt := range []struct {
		name    string
		ldflags string
		bi      *debug.BuildInfo
		want    buildVersion
	}{
		{"ldflags wins", "v2.0.0-3-gabc-dirty", stamped, buildVersion{Version: "v2.0.0-3-gabc-dirty",
			Module: "github.com/abortscope/abortscope v1.2.3", Revision: "8b8275812345", Time: "2026-11-30T10:00:00Z", Modified: "true"}},
		{"module version", "", stamped, buildVersion{Version: "v1.2.3",
			Module: "github.com/abortscope/abortscope v1.2.3", Revision: "8b8275812345", Time: "2026-11-30T10:00:00Z", Modified: "true"}},
		{"devel", "", devel, buildVersion{Version: "dev", Module: "github.com/abortscope/abortscope (devel)"}},
		{"no build info", "", nil, buildVersion{Version: "dev"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := readBuildVersion(tt.ldflags, tt.bi)
			tt.want.Go, tt.want.Platform = "go1.99.1", runtime.GOOS+"/"+runtime.GOARCH
			if tt.bi == nil {
				tt.want.Go = runtime.Version()
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}

	var b strings.Builder
	readBuildVersion("v2.0.0", stamped).write(&b)
	want := "abortscope v2.0.0\n" +
		"module    github.com/abortscope/abortscope v1.2.3\n" +
		"revision  8b8275812345\n" +
		"time      2026-11-30T10:00:00Z\n" +
		"modified  true\n" +
		"go        go1.99.1\n" +
		"platform  " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if b.String() != want {
		t.Errorf("version output:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestVersionCommand: abortscope version prints this binary's version,
// Go toolchain and platform; --version the version.
func TestVersionCommand(t *testing.T) {
	out, _, err := runWithStderr(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	v := currentBuildVersion()
	for _, w := range []string{"abortscope " + v.Version + "\n", "go        " + v.Go + "\n", "platform  " + runtime.GOOS + "/" + runtime.GOARCH + "\n"} {
		if !strings.Contains(out, w) {
			t.Errorf("abortscope version lacks %q:\n%s", w, out)
		}
	}
	if out, _, err := runWithStderr(t, "--version"); err != nil || out != "abortscope version "+v.Version+"\n" {
		t.Errorf("--version: %q, %v", out, err)
	}
}
