package events

// Sink receives one Event per ended connection. Emit is called from many
// goroutines at once, must return quickly (it runs in the connection's
// teardown) and must not retain the Event.
type Sink interface {
	Emit(*Event)
}

// FaultObserver is an optional capability of a Sink: it is told each time a
// fault rule fires (latency and bandwidth rules fire on every chunk they
// shape), for abortscope_faults_fired_total.
type FaultObserver interface {
	FaultFired(action string)
}

// Sinks fans events out to several sinks, in order.
type Sinks []Sink

// Emit gives e to every sink.
func (s Sinks) Emit(e *Event) {
	for _, x := range s {
		x.Emit(e)
	}
}

// FaultFired tells every sink that observes faults.
func (s Sinks) FaultFired(action string) {
	for _, x := range s {
		if o, ok := x.(FaultObserver); ok {
			o.FaultFired(action)
		}
	}
}

var (
	_ Sink          = Sinks(nil)
	_ FaultObserver = Sinks(nil)
	_ Sink          = (*Writer)(nil)
)
