package actors_test

import (
	"bufio"
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

// ExampleSupervisor_Logs follows a box's console while it runs, then reads
// its last line. A following reader ends by itself once the box has come to
// rest.
func ExampleSupervisor_Logs() {
	home, err := os.MkdirTemp("", "boxsup-example-logs-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(home)

	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sup, err := actors.NewSupervisor(ctx, actors.Config{Home: home, ShimBinary: shimBinary, Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}
	defer sup.Shutdown(ctx, actors.StopAll)

	_, err = sup.Start(ctx, messages.StartBox{
		ID: "greeter",
		Spec: messages.InstanceSpec{GuestEntrypoint: messages.Entrypoint{
			Executable: "/bin/sh",
			Args:       []string{"-c", "echo hello; echo world; exec sleep 60"},
		}},
	})
	if err != nil {
		log.Fatal(err)
	}

	follow, err := sup.Logs(ctx, "greeter", actors.LogOptions{Follow: true})
	if err != nil {
		log.Fatal(err)
	}
	defer follow.Close()
	lines := bufio.NewScanner(follow)
	for i := 0; i < 2 && lines.Scan(); i++ {
		fmt.Println("followed:", lines.Text())
	}
	if _, err := sup.Stop(ctx, "greeter", 5*time.Second); err != nil {
		log.Fatal(err)
	}
	rest, err := io.ReadAll(follow) // the box is at rest: the reader ends
	fmt.Printf("then %d more bytes, %v\n", len(rest), err)

	last, err := sup.Logs(ctx, "greeter", actors.LogOptions{Tail: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer last.Close()
	b, err := io.ReadAll(last)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("last line: %s", b)

	// Output:
	// followed: hello
	// followed: world
	// then 0 more bytes, <nil>
	// last line: world
}
