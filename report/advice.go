package report

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
)

// WriteAdvice writes, for each client as ranked and each cause of its
// connections other than clean, the count and the advice, once per group.
// It writes nothing when every connection was clean.
func WriteAdvice(w io.Writer, sums []Summary) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := false
	for _, s := range sums {
		causes := slices.Collect(maps.Keys(s.Causes))
		slices.SortFunc(causes, func(a, b string) int {
			return cmp.Or(cmp.Compare(s.Causes[b], s.Causes[a]), cmp.Compare(a, b))
		})
		for _, c := range causes {
			if c == "clean" {
				continue
			}
			if !header {
				fmt.Fprintln(w)
				fmt.Fprintln(tw, "CLIENT\tPROGRAM\tCAUSE\tCONNS\tADVICE")
				header = true
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", clientName(s.User, s.Host), dash(s.Program), c, s.Causes[c], s.Advice[c])
		}
	}
	return tw.Flush()
}
