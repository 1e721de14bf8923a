package actors

import (
	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/shimproc"
)

// sweepHome tidies what earlier supervisors left in the home and warns about
// what it may not tidy. It runs when a supervisor opens the home, under the
// home lock and before the root exists, so no box of this supervisor is
// being created or removed meanwhile.
func (c *core) sweepHome() {
	c.sweepRemoved()
	c.reportLeftCgroups()
}

// sweepRemoved deletes the files of removed boxes that are still there: a
// supervisor died during a removal, or a file could not be deleted (the
// removal's error said they would be deleted now). What still cannot be is
// a warning, once per directory, at every start until it is gone.
func (c *core) sweepRemoved() {
	err := c.home.SweepRemoved()
	if err == nil {
		return
	}
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	for _, err := range errs {
		c.log.WithError(err).Warn("deleting the files of a removed box failed; it is tried again when a supervisor next opens the home")
	}
}

// reportLeftCgroups warns about processes in the cgroup of a box the home
// does not have (its directory was deleted while they ran): no box actor
// looks after them, so without a word they would run unseen. They are left
// alone, since nothing verifies what they are; empty cgroups of such boxes
// are removed.
func (c *core) reportLeftCgroups() {
	ids, err := c.home.BoxIDs()
	if err != nil {
		c.log.WithError(err).Warn("listing the boxes to look for processes left without one failed")
		return
	}
	left, err := shimproc.SweepBoxCgroups(c.cgroupParent, ids)
	for _, l := range left {
		c.log.WithFields(logrus.Fields{"box_id": l.ID, "cgroup": l.Dir, "pids": l.PIDs}).Warn(
			"processes run in the cgroup of a box this home does not have (was its directory deleted?): nothing supervises them and they are left running; " +
				"starting a box of that ID kills them first, or write 1 to the cgroup's cgroup.kill")
	}
	if err != nil {
		c.log.WithError(err).Warn("removing the empty cgroups of boxes this home does not have failed")
	}
}
