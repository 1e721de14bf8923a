package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/boxsup/boxsup/actors/internal/lifecycle"
	"github.com/boxsup/boxsup/health"
	"github.com/boxsup/boxsup/messages"
)

// Health checks run on the supervisor's one health.Scheduler, off every
// actor goroutine and bounded in number; it costs nothing while no box has
// a check. A box actor adds its generation's check when its machine says
// StartChecks and removes it on StopChecks or when its incarnation ends;
// each result travels through the root to the box actor as a Health event,
// where the machine's tracker judges it.

// healthResult is one probe's result on its way to the box's actor.
type healthResult struct {
	id     string
	gen    uint64
	result messages.HealthResult
}

// newHealthScheduler returns the scheduler whose results go to the root
// (once it exists: no check can run before a box does).
func (c *core) newHealthScheduler() *health.Scheduler {
	return health.NewScheduler(func(id string, gen uint64, r messages.HealthResult) {
		if root := c.rootPID.Load(); root != nil {
			c.root.Send(root, &healthResult{id: id, gen: gen, result: r})
		}
	}, health.Options{})
}

// startChecks begins probing generation e.Gen with the box's check.
func (a *boxActor) startChecks(e lifecycle.StartChecks) {
	check, h := a.m.Options().Health, a.handles[e.Gen]
	if check == nil || h == nil {
		a.log.WithField("gen", e.Gen).Error("health checks asked for a generation without a check or a process")
		return
	}
	spec := a.spec.Spec
	job := health.Job{BoxID: a.id, Gen: e.Gen, Check: *check, Since: e.Since,
		Target: health.Target{Spec: &spec, Shim: h.Identity(), Cgroup: h.CgroupPath()}}
	if err := a.core.health.Add(job); err != nil {
		a.log.WithError(err).Warn("the box's health checks could not start")
		return
	}
	a.checking = true
}

// stopChecks ends the box's probes (a result already on its way is
// ignored by the machine: its generation is no longer probed).
func (a *boxActor) stopChecks() {
	if a.checking {
		a.core.health.Remove(a.id)
		a.checking = false
	}
}

// onHealthResult hands a probe's result to the machine.
func (a *boxActor) onHealthResult(ctx actor.Context, m *healthResult) {
	a.feed(ctx, lifecycle.Health{Gen: m.gen, Result: m.result})
}

// validateHealth checks a start's health check and ready condition without
// I/O: the check itself, that it names none of the spec's secrets, that the
// engine can run it, and that what needs a check has one.
func validateHealth(req *messages.StartBox) error {
	if req.HealthCheck != nil {
		if err := req.HealthCheck.Validate(); err != nil {
			return err
		}
		if err := req.HealthCheck.ValidateFor(&req.Spec); err != nil {
			return err
		}
		if err := health.Supported(req.HealthCheck, &req.Spec); err != nil {
			return err
		}
	}
	if err := req.ReadyWhen.Validate(req.HealthCheck); err != nil {
		return err
	}
	if req.Restart.Mode == messages.RestartOnUnhealthy && req.HealthCheck == nil {
		return messages.Errorf(messages.ErrBadSpec, "restart.mode: on-unhealthy needs a health_check")
	}
	return nil
}
