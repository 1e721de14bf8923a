package actors_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/messages"
)

// Example runs one box: a sleep command under the reference shim. It
// starts it (Start returns once the box is ready), samples its process
// tree, stops it gracefully (Stop returns once the shim has exited) and
// shuts the supervisor down.
func Example() {
	home, err := os.MkdirTemp("", "boxsup-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(home)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	sup, err := actors.NewSupervisor(ctx, actors.Config{
		Home:       home,
		ShimBinary: shimBinary, // the path of a built cmd/boxsup-shim
		Logger:     quiet,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sup.Shutdown(ctx, actors.StopAll)

	st, err := sup.Start(ctx, messages.StartBox{
		ID: "hello",
		Spec: messages.InstanceSpec{GuestEntrypoint: messages.Entrypoint{
			Executable: "/bin/sleep",
			Args:       []string{"60"},
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("state:", st.State)

	m, err := sup.Metrics(ctx, "hello")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("shim and guest running:", m.Processes >= 2)

	st, err = sup.Stop(ctx, "hello", 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stopped:", st.State == messages.StateExited)
	fmt.Println("exit:", st.LastExit.ShellCode())

	// Output:
	// state: running
	// shim and guest running: true
	// stopped: true
	// exit: 143
}
