package actors_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/boxsup/boxsup/actors"
	"github.com/boxsup/boxsup/messages"
)

// Example_readme is the code of README.md's "Embedding" section, verbatim
// between the markers (TestReadmeExampleIsRun checks that): a detached,
// labelled box, selected by label, waited for and stopped.
func Example_readme() {
	dir, err := os.MkdirTemp("", "boxsup-readme-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// The reference shim is found beside the executable or on PATH.
	os.Setenv("PATH", filepath.Dir(shimBinary)+string(os.PathListSeparator)+os.Getenv("PATH"))

	// README begins
	ctx := context.Background()
	sup, err := actors.NewSupervisor(ctx, actors.Config{Home: dir})
	if err != nil {
		log.Fatal(err)
	}
	// Detached boxes outlive the supervisor: the next one adopts them.
	defer sup.Shutdown(ctx, actors.LeaveRunning)

	st, err := sup.Start(ctx, messages.StartBox{
		ID:          "web",
		Spec:        messages.InstanceSpec{GuestEntrypoint: messages.Entrypoint{Executable: "/bin/sleep", Args: []string{"1000"}}},
		Restart:     messages.RestartPolicy{Mode: messages.RestartOnFailure},
		StopTimeout: 5 * time.Second,
		Detach:      true,
		Labels:      map[string]string{"app": "web"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.ID, st.State)

	web, err := sup.List(ctx, actors.ListOptions{Labels: "app=web"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(web), "box labelled app=web")

	exit, err := sup.Wait(ctx, "web") // how the box comes to rest, whenever it does
	if err != nil {
		log.Fatal(err)
	}
	if _, err := sup.Stop(ctx, "web", 5*time.Second); err != nil {
		log.Fatal(err)
	}
	fmt.Println("web is", (<-exit).State)
	// README ends

	// Output:
	// web running
	// 1 box labelled app=web
	// web is exited
}
