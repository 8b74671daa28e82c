// The generated Go client against the real `assay` binary (ASSAY_BIN, built by scripts/test) and
// a real HTTP application on 127.0.0.1.
package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"assay/clients/go/apikey"
	"assay/clients/go/assayv1"
)

const (
	france = "What is the capital of France?"
	italy  = "What is the capital of Italy?"
)

// startAssay runs `assay serve` on a free port with a fresh database; returns a connection.
func startAssay(t *testing.T) *grpc.ClientConn {
	return startAssayWith(t, nil)
}

// startAssayWith runs `assay serve` with the extra arguments `args`; the connection has the
// dial options `options` too.
func startAssayWith(t *testing.T, args []string, options ...grpc.DialOption) *grpc.ClientConn {
	binary := os.Getenv("ASSAY_BIN")
	if binary == "" {
		t.Fatal("ASSAY_BIN is not set: run the suite with scripts/test")
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := listener.Addr().String()
	listener.Close()
	dir := t.TempDir()
	cmd := exec.Command(binary, append([]string{"serve", "--listen", addr, "--database", "sqlite://" + filepath.Join(dir, "assay.db")}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("assay did not accept connections")
		}
	}
	conn, err := grpc.Dial(addr, append([]grpc.DialOption{grpc.WithInsecure()}, options...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// app answers {"answer": ...} to {"prompt": ...}; the answer to Italy waits for `release`.
func app(t *testing.T, release chan struct{}) string {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Prompt string }
		json.NewDecoder(r.Body).Decode(&body)
		answer := "Paris"
		if body.Prompt == italy {
			<-release
			answer = "Milan"
		}
		json.NewEncoder(w).Encode(map[string]string{"answer": answer})
	}))
	t.Cleanup(server.Close)
	return server.URL
}

func TestExecuteStreamsEachResultBeforeTheRunEnds(t *testing.T) {
	conn := startAssay(t)
	release := make(chan struct{})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	url := app(t, release)
	ctx := context.Background()
	metrics := assayv1.NewMetricServiceClient(conn)
	if _, err := metrics.CreateMetric(ctx, &assayv1.CreateMetricRequest{Metric: &assayv1.Metric{
		Name: "exact", Kind: &assayv1.Metric_ExactMatch{ExactMatch: &assayv1.ExactMatch{}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := assayv1.NewEndpointServiceClient(conn).CreateEndpoint(ctx, &assayv1.CreateEndpointRequest{Endpoint: &assayv1.Endpoint{
		Name:   "app",
		Target: &assayv1.Endpoint_Http{Http: &assayv1.HttpTarget{Url: url, ResponseMapping: &assayv1.ResponseMapping{Output: "$.answer"}}}}}); err != nil {
		t.Fatal(err)
	}
	sets := assayv1.NewTestSetServiceClient(conn)
	if _, err := sets.CreateTestSet(ctx, &assayv1.CreateTestSetRequest{TestSet: &assayv1.TestSet{Name: "capitals", Metrics: []string{"exact"}}}); err != nil {
		t.Fatal(err)
	}
	tests := []*assayv1.Test{{Prompt: france, ExpectedResponse: proto.String("Paris")}, {Prompt: italy, ExpectedResponse: proto.String("Rome")}}
	if _, err := sets.AddTests(ctx, &assayv1.AddTestsRequest{TestSet: "capitals", Tests: tests}); err != nil {
		t.Fatal(err)
	}

	execution := assayv1.NewTestExecutionServiceClient(conn)
	events, err := execution.Execute(ctx, &assayv1.ExecuteRequest{TestSet: "capitals", Endpoint: "app", Mode: assayv1.ExecutionMode_EXECUTION_MODE_SEQUENTIAL})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for {
		event, err := events.Recv()
		if err != nil {
			t.Fatalf("after %v: %v", kinds, err)
		}
		kinds = append(kinds, fmt.Sprintf("%T", event.Event))
		if result := event.GetResult(); result != nil && result.Prompt == france {
			// The application still holds Italy's answer: this result came while the run ran.
			close(release)
		}
		if summary := event.GetRunFinished(); summary != nil {
			if summary.Total != 2 || summary.Passed != 1 || summary.Failed != 1 {
				t.Fatalf("summary %v", summary)
			}
			break
		}
	}
	want := "[*assayv1.ExecutionEvent_RunStarted *assayv1.ExecutionEvent_Result *assayv1.ExecutionEvent_Result *assayv1.ExecutionEvent_RunFinished]"
	if fmt.Sprint(kinds) != want {
		t.Fatalf("events %v", kinds)
	}
}

func TestAnInvalidArgumentCarriesTheFieldDetails(t *testing.T) {
	conn := startAssay(t)
	_, err := assayv1.NewMetricServiceClient(conn).CreateMetric(context.Background(), &assayv1.CreateMetricRequest{Metric: &assayv1.Metric{
		Name: "bad", Kind: &assayv1.Metric_Regex{Regex: &assayv1.Regex{Pattern: "("}}}})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("status %v", st)
	}
	for _, detail := range st.Details() {
		if bad, ok := detail.(*errdetails.BadRequest); ok && bad.FieldViolations[0].Field == "metric.regex.pattern" {
			return
		}
	}
	t.Fatalf("no BadRequest naming metric.regex.pattern in %v", st.Details())
}

func TestTheAPIKeyOfAssayAPIKeyIsSentWithEveryCall(t *testing.T) {
	t.Setenv("ASSAY_API_KEY", "sk-go-test")
	keyed := startAssayWith(t, []string{"--api-key", "sk-go-test"}, grpc.WithPerRPCCredentials(apikey.FromEnv()))
	ctx := context.Background()
	if _, err := assayv1.NewMetricServiceClient(keyed).ListMetrics(ctx, &assayv1.ListMetricsRequest{}); err != nil {
		t.Fatalf("with the key: %v", err)
	}
	without := startAssayWith(t, []string{"--api-key", "sk-go-test"}, grpc.WithPerRPCCredentials(apikey.Key("")))
	_, err := assayv1.NewMetricServiceClient(without).ListMetrics(ctx, &assayv1.ListMetricsRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("without a key: %v", err)
	}
}
