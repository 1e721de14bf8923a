package actors_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/labels"
	"github.com/boxsup/boxsup/messages"
)

// exampleSupervisor opens a supervisor on a fresh home with a quiet logger;
// done shuts it down and removes the home.
func exampleSupervisor(ctx context.Context) (sup *actors.Supervisor, done func()) {
	home, err := os.MkdirTemp("", "boxsup-example-")
	if err != nil {
		log.Fatal(err)
	}
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	sup, err = actors.NewSupervisor(ctx, actors.Config{Home: home, ShimBinary: shimBinary, Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	return sup, func() {
		_ = sup.Shutdown(ctx, actors.StopAll)
		_ = os.RemoveAll(home)
	}
}

func command(argv ...string) messages.InstanceSpec {
	return messages.InstanceSpec{GuestEntrypoint: messages.Entrypoint{Executable: argv[0], Args: argv[1:]}}
}

// ExampleSupervisor_Wait registers for a box's exit before starting it: the
// exit cannot be missed, however soon it comes.
func ExampleSupervisor_Wait() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sup, done := exampleSupervisor(ctx)
	defer done()

	exited, err := sup.Wait(ctx, "job")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := sup.Start(ctx, messages.StartBox{ID: "job", Spec: command("/bin/sh", "-c", "exit 3")}); err != nil {
		log.Fatal(err)
	}
	exit, ok := <-exited
	fmt.Println(ok, exit.State, exit.Exit.ShellCode())

	// Output:
	// true exited 3
}

// ExampleSupervisor_Update labels boxes at Start, selects them with a
// label selector, and changes one box's restart policy and labels in place:
// its process is not touched.
func ExampleSupervisor_Update() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sup, done := exampleSupervisor(ctx)
	defer done()

	for id, tier := range map[string]string{"web-1": "front", "db-1": "db"} {
		_, err := sup.Start(ctx, messages.StartBox{ID: id, Spec: command("/bin/sleep", "60"),
			Labels: map[string]string{"app": "shop", "tier": tier}})
		if err != nil {
			log.Fatal(err)
		}
	}
	front, err := sup.List(ctx, actors.ListOptions{Labels: "app=shop,tier!=db"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("front:", front[0].ID)

	always := messages.RestartPolicy{Mode: messages.RestartAlways}
	before, _ := sup.Status(ctx, "db-1")
	after, err := sup.Update(ctx, messages.UpdateBox{ID: "db-1", Restart: &always,
		Labels: map[string]string{"app": "shop", "tier": "db", "backup": "nightly"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("restart:", after.Restart.Mode, "backup:", after.Labels["backup"], "same process:", after.PID == before.PID)

	// Output:
	// front: web-1
	// restart: always backup: nightly same process: true
}

// ExampleSupervisor_Subscribe watches a fleet: one callback for the exits of
// the boxes labelled app=batch, in order, on a goroutine of its own.
func ExampleSupervisor_Subscribe() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sup, done := exampleSupervisor(ctx)
	defer done()

	batch, err := labels.Parse("app=batch")
	if err != nil {
		log.Fatal(err)
	}
	exits := make(chan string, 4)
	stop := sup.Subscribe(actors.EventFilter{Labels: batch, Kinds: []string{"BoxExited"}}, func(ev messages.Event) {
		exits <- ev.Box()
	})
	defer stop()
	for _, id := range []string{"batch-1", "web-1"} {
		app := map[bool]string{true: "batch", false: "web"}[id == "batch-1"]
		_, err := sup.Start(ctx, messages.StartBox{ID: id, Spec: command("/bin/true"), Labels: map[string]string{"app": app}})
		if err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("exited:", <-exits)

	// Output:
	// exited: batch-1
}

// ExampleProtoactorLogger embeds a supervisor in an actor system of the
// caller's, with protoactor's logs and boxsup's in one logger that already
// carries a field of the caller's.
func ExampleProtoactorLogger() {
	home, err := os.MkdirTemp("", "boxsup-example-system-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(home)
	base := logrus.New()
	base.SetOutput(io.Discard)
	logger := base.WithField("component", "orchestrator") // any logrus.FieldLogger

	system := actor.NewActorSystem(actor.WithLoggerFactory(actors.ProtoactorLogger(logger)))
	defer system.Shutdown()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sup, err := actors.NewSupervisor(ctx, actors.Config{Home: home, ShimBinary: shimBinary, Logger: logger, System: system})
	if err != nil {
		log.Fatal(err)
	}
	defer sup.Shutdown(ctx, actors.StopAll)
	fmt.Println(sup.System() == system)

	// Output:
	// true
}
