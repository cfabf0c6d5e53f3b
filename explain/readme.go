package explain

import (
	"errors"
	"strings"
)

// The cause table of the documentation (docs/events.md) lives between
// these markers.
const (
	BeginMarker = "<!-- causes:begin -->"
	EndMarker   = "<!-- causes:end -->"
)

// ReplaceBlock returns doc with the text between the markers replaced by
// table.
func ReplaceBlock(doc, table string) (string, error) {
	i := strings.Index(doc, BeginMarker)
	j := strings.Index(doc, EndMarker)
	if i < 0 || j < i {
		return "", errors.New("no " + BeginMarker + " … " + EndMarker + " block")
	}
	return doc[:i+len(BeginMarker)] + "\n" + table + doc[j:], nil
}
