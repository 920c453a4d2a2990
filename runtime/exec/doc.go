// Package exec runs an imported graph.
//
// A Session is compiled once from a Graph: the inference passes rewrite a copy of it, and each
// distinct set of input shapes is compiled into a plan (runtime/plan) on the session's device on
// first use; graphs whose shapes depend on data run node by node on the reference kernels
// (runtime/kernels/ref). Run is safe to call from many goroutines at once: all per-run state
// lives in the call or in the plan's pool of run memories.
//
// A batch runs in lanes when the device has them (device.Lanes), the session has several
// threads and the graph keeps batch rows apart (plan.RowIndependent): the batch is cut into one
// part per thread, and each part runs the whole graph on its thread with a plan of its own
// (Session.Lanes says when). The threads then never wait for each other inside a run, where a
// whole batch has every kernel fork and join, and the lane device's kernels choose and round as
// the session's do, so each row's result is bit for bit the same either way. For the same reason
// a run that starts while another is running on the session runs in a lane of its own.
package exec
