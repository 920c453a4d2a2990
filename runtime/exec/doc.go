// Package exec runs an imported graph.
//
// A Session is compiled once from a Graph: names are resolved to integer value slots, each node
// gets its kernel, and each step lists the values that die after it so their memory can be
// released. Run then works on slots only and is safe to call from many goroutines at once: all
// per-run state lives in the call.
//
// The kernels come from runtime/kernels/ref today; faster kernel sets and devices plug in through
// the same step list.
package exec
