package report

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/abortscope/abortscope/events"
)

func TestReadEvents(t *testing.T) {
	line := func(e *events.Event) string {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	big := ev("app", "10.0.0.5:1", "billing", 3, 3, events.Clean, func(e *events.Event) {
		e.Query = strings.Repeat("x", 200<<10) // longer than the reader's buffer
	})
	input := strings.Join([]string{
		line(ev("app", "10.0.0.5:1", "billing", 1, 1, events.Clean)),
		"",
		"not json",
		`{"event":"something_else"}`,
		line(ev("app", "10.0.0.5:1", "billing", 2, 2, events.ClientNoQuit)) + "\r",
		line(big),
		`{"event":"connection_ended","ts":"2026-`, // half a line: the file is being written
	}, "\n")
	var ids []uint32
	st, err := ReadEvents(strings.NewReader(input), func(e *events.Event) { ids = append(ids, e.ServerConnID) })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, []uint32{1, 2, 3}) {
		t.Errorf("events %v, want 1 2 3", ids)
	}
	if st.Lines != 6 || st.Events != 3 || st.Bad != 3 || !strings.HasPrefix(st.FirstBad, "line 3: invalid character") {
		t.Errorf("stats %+v; want 6 lines, 3 events, 3 bad, the first on line 3", st)
	}
}

func TestEachLineTooLong(t *testing.T) {
	long := strings.Repeat("y", 100<<10)
	input := "a\n" + long + "\nb\n" + long + "z"
	var got []string
	var longs []int
	err := eachLine(strings.NewReader(input), 70<<10, func(no int, line []byte) {
		got = append(got, string(line))
	}, func(no int) { longs = append(longs, no) })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"a", "b"}) || !slices.Equal(longs, []int{2, 4}) {
		t.Errorf("lines %q, too long %v; want a b, 2 4", got, longs)
	}
}
