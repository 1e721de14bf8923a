// Package actors supervises boxes with protoactor-go.
//
// Each box is a BoxActor that owns its shim process through a shimproc.Handle.
// A RootSupervisor actor owns the box actors: it routes requests by box ID,
// restarts a box actor that panics (OTP-style intensity limit), answers List
// and MetricsAll, and on boot reconciles the home directory, adopting running
// shims after verifying their identity.
//
// An actor is not its process. A box actor that stops or restarts only closes
// its handle; the shim keeps running and the next incarnation adopts it again
// from state.json. Only Stop, Kill and Remove end a shim.
//
// Embedders use the Supervisor facade:
//
//	sup, err := actors.NewSupervisor(ctx, actors.Config{Home: dir})
//	defer sup.Shutdown(ctx, actors.LeaveRunning)
//	st, err := sup.Start(ctx, messages.StartBox{ID: "web", Spec: spec})
//	st, err = sup.Stop(ctx, "web", 5*time.Second)
//
// Contexts: a request whose ctx is already done returns ctx's error and
// does nothing. Once sent, a request other than Start is carried out by the
// box whatever happens to ctx, which then only bounds how long the caller
// waits for the reply: an error matching ctx's says the answer was not
// waited for, not that nothing happened (read the box's status to learn
// the outcome). Start is the exception: like os/exec's CommandContext, a
// ctx that ends before the box is ready undoes the start.
//
// Nothing inside an actor's Receive sleeps, polls, waits on a future or does
// file I/O: spawning, adopting, persisting state and sampling metrics run on
// goroutines that report back with messages.
package actors
