// Package docs holds abortscope's documentation; its test checks that every
// relative link of the README and of these pages leads somewhere.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// pages are the Markdown files whose links are checked, relative to the
// repository root.
func pages(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("no docs/*.md found: run the test from the docs directory")
	}
	out := []string{"README.md"}
	for _, d := range docs {
		out = append(out, filepath.Join("docs", d))
	}
	return out
}

var (
	linkRE  = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	fenceRE = regexp.MustCompile("^\\s*```")
)

// prose returns the lines of a Markdown file outside fenced code blocks.
func prose(text string) []string {
	var out []string
	in := false
	for _, l := range strings.Split(text, "\n") {
		if fenceRE.MatchString(l) {
			in = !in
			continue
		}
		if !in {
			out = append(out, l)
		}
	}
	return out
}

// slug is GitHub's anchor for a heading: lower case, punctuation but '-'
// and '_' dropped, spaces made '-'.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors lists the anchors of a Markdown file's headings, with GitHub's
// -1, -2 suffixes for repeated ones.
func anchors(text string) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	for _, l := range prose(text) {
		if !strings.HasPrefix(l, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(l, "#"))
		s := slug(h)
		if n := seen[s]; n > 0 {
			out[s+"-"+itoa(n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	return out
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// TestLinks fails on a relative link to a file that does not exist or to a
// heading that the file does not have: moving a section between the README
// and docs/ must not leave a dead link behind.
func TestLinks(t *testing.T) {
	root := ".."
	files := map[string]string{}
	read := func(rel string) (string, bool) {
		if s, ok := files[rel]; ok {
			return s, true
		}
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			return "", false
		}
		files[rel] = string(b)
		return files[rel], true
	}
	checked := 0
	for _, page := range pages(t) {
		text, ok := read(page)
		if !ok {
			t.Fatalf("cannot read %s", page)
		}
		for i, l := range prose(text) {
			for _, m := range linkRE.FindAllStringSubmatch(l, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				file, anchor, _ := strings.Cut(target, "#")
				rel := page
				if file != "" {
					rel = filepath.Clean(filepath.Join(filepath.Dir(page), file))
				}
				checked++
				if _, err := os.Stat(filepath.Join(root, rel)); err != nil {
					t.Errorf("%s (prose line %d): link %q: %s does not exist", page, i+1, target, rel)
					continue
				}
				if anchor == "" || !strings.HasSuffix(rel, ".md") {
					continue
				}
				body, _ := read(rel)
				if !anchors(body)[anchor] {
					t.Errorf("%s (prose line %d): link %q: %s has no heading #%s", page, i+1, target, rel, anchor)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative links found: the link pattern is broken")
	}
}

func TestSlug(t *testing.T) {
	for h, want := range map[string]string{
		"Finding the clients that skip mysql_close()": "finding-the-clients-that-skip-mysql_close",
		"Live connections: `GET /connections`":        "live-connections-get-connections",
		"How `passthrough` judges an ending":          "how-passthrough-judges-an-ending",
		"Configuration: `serve` flags":                "configuration-serve-flags",
	} {
		if got := slug(h); got != want {
			t.Errorf("slug(%q) = %q, want %q", h, got, want)
		}
	}
}
