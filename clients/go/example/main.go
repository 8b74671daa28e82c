// Command example runs a test set against an endpoint on an Assay server and prints each result
// the moment it is scored:
//
//	go run ./example -server 127.0.0.1:50051 quickstart demo-bot
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"

	"google.golang.org/grpc"

	"assay/clients/go/assayv1"
)

func main() {
	server := flag.String("server", "127.0.0.1:50051", "host:port of the Assay server")
	flag.Parse()
	if flag.NArg() != 2 {
		log.Fatal("usage: example [-server HOST:PORT] TEST_SET ENDPOINT")
	}
	conn, err := grpc.Dial(*server, grpc.WithInsecure())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := assayv1.NewTestExecutionServiceClient(conn)
	events, err := client.Execute(context.Background(), &assayv1.ExecuteRequest{TestSet: flag.Arg(0), Endpoint: flag.Arg(1)})
	if err != nil {
		log.Fatal(err)
	}
	for {
		event, err := events.Recv()
		if err == io.EOF {
			return
		}
		if err != nil {
			log.Fatal(err) // a status error: status.FromError(err) has its code and details
		}
		switch e := event.Event.(type) {
		case *assayv1.ExecutionEvent_Result:
			fmt.Printf("%s %q\n", e.Result.Status, e.Result.Prompt)
		case *assayv1.ExecutionEvent_RunFinished:
			fmt.Printf("%s: %d passed of %d\n", e.RunFinished.Status, e.RunFinished.Passed, e.RunFinished.Total)
		}
	}
}
