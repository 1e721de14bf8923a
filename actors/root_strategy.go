package actors

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/messages"
)

// HandleFailure implements actor.SupervisorStrategy for the root's box
// actors. A box actor that panicked is restarted (it re-adopts its shim from
// state.json); past Config.ActorRestarts failures within
// Config.ActorRestartWindow the actor is stopped and the box marked failed.
// The shim is left as it is in both cases: an actor's failure is not its
// process's. The failed mark lives in the root's status cache only; state.json
// keeps the live record so that the next supervisor adopts the shim again.
func (r *rootSupervisor) HandleFailure(_ *actor.ActorSystem, sup actor.Supervisor, child *actor.PID, rs *actor.RestartStatistics, reason any, _ any) {
	id := r.childID(child)
	log := r.core.log.WithField("box_id", id)
	rs.Fail()
	if n := rs.NumberOfFailures(r.core.cfg.ActorRestartWindow); n > r.core.cfg.ActorRestarts {
		why := fmt.Sprintf("box actor failed %d times within %s (last: %v)", n, r.core.cfg.ActorRestartWindow, reason)
		log.WithField("reason", why).Error("giving up on box actor; its shim is left running")
		sup.StopChildren(child)
		if id != "" {
			st := r.statuses[id]
			st.ID, st.State, st.Reason = id, messages.StateFailed, why
			r.statuses[id] = st
			r.core.publish(messages.BoxFailed{EventHeader: messages.EventHeader{Home: r.core.home.Root, BoxID: id, At: time.Now().UTC(), Generation: st.Generation}, Reason: why})
		}
		return
	}
	log.WithField("reason", fmt.Sprint(reason)).Warn("box actor panicked; restarting it")
	sup.RestartChildren(child)
}

func (r *rootSupervisor) childID(child *actor.PID) string {
	for id, pid := range r.children {
		if pid.Equal(child) {
			return id
		}
	}
	return ""
}

// rootGuardian restarts the root itself when it panics (its children, the
// box actors, are stopped by protoactor and re-spawned by the new root,
// which re-adopts their shims).
func rootGuardian() actor.SupervisorStrategy {
	return actor.NewOneForOneStrategy(10, 10*time.Second, func(any) actor.Directive { return actor.RestartDirective })
}
