package deploycheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aiprism/prism/cmd/prism/internal/system"
	"github.com/aiprism/prism/streams"
	"github.com/santhosh-tekuri/jsonschema/v6"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// kedaModule is the KEDA release whose ScaledObject CRD (its OpenAPI
// schema) the manifests are validated against, fetched through the Go
// module proxy like any module and checked against the checksum database.
const kedaModule = "github.com/kedacore/keda/v2@v2.20.2"

// manifests are the objects deploy/k8s/kustomization.yaml lists, by kind.
type manifests struct {
	deployments  map[string]appsv1.Deployment
	statefulSets map[string]appsv1.StatefulSet
	jobs         map[string]batchv1.Job
	pdbs         []policyv1.PodDisruptionBudget
	scaled       map[string]scaledObject
	generators   map[string][]string // generated Secret/ConfigMap name -> its files
}

// scaledObject is the part of a KEDA ScaledObject the checks read; the
// whole object is validated against KEDA's schema.
type scaledObject struct {
	Spec struct {
		ScaleTargetRef struct{ Name string } `json:"scaleTargetRef"`
		Triggers       []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
	ConfigMapGenerator []struct {
		Name     string   `json:"name"`
		Files    []string `json:"files"`
		Envs     []string `json:"envs"`
		Literals []string `json:"literals"`
	} `json:"configMapGenerator"`
	SecretGenerator []struct {
		Name  string   `json:"name"`
		Files []string `json:"files"`
		Envs  []string `json:"envs"`
	} `json:"secretGenerator"`
}

// loadKustomization reads dir's kustomization and every resource it
// lists, recursing into directories; each document is decoded strictly
// into its Kubernetes type (an unknown or misspelt field fails), and a
// ScaledObject is validated against KEDA's CRD schema.
func loadKustomization(t *testing.T, dir string, m *manifests, keda *jsonschema.Schema) {
	t.Helper()
	var k kustomization
	decodeFile(t, filepath.Join(dir, "kustomization.yaml"), &k)
	for _, g := range k.SecretGenerator {
		m.generators[g.Name] = append(g.Files, g.Envs...)
	}
	for _, g := range k.ConfigMapGenerator {
		m.generators[g.Name] = append(g.Files, g.Envs...)
	}
	for _, r := range k.Resources {
		path := filepath.Join(dir, r)
		if st, err := os.Stat(path); err == nil && st.IsDir() {
			loadKustomization(t, path, m, keda)
			continue
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s lists %s: %v", dir, r, err)
		}
		for i, doc := range bytes.Split(raw, []byte("\n---\n")) {
			if err := m.add(doc, keda); err != nil {
				t.Errorf("%s, document %d: %v", path, i+1, err)
			}
		}
	}
}

func decodeFile(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func (m *manifests) add(doc []byte, keda *jsonschema.Schema) error {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct{ Name string }
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return err
	}
	if head.Kind == "" {
		return nil // only comments
	}
	strict := func(v any) error { return yaml.UnmarshalStrict(doc, v) }
	name := head.Metadata.Name
	switch head.APIVersion + " " + head.Kind {
	case "apps/v1 Deployment":
		var d appsv1.Deployment
		err := strict(&d)
		m.deployments[name] = d
		return err
	case "apps/v1 StatefulSet":
		var s appsv1.StatefulSet
		err := strict(&s)
		m.statefulSets[name] = s
		return err
	case "batch/v1 Job":
		var j batchv1.Job
		err := strict(&j)
		m.jobs[name] = j
		return err
	case "policy/v1 PodDisruptionBudget":
		var p policyv1.PodDisruptionBudget
		err := strict(&p)
		m.pdbs = append(m.pdbs, p)
		return err
	case "v1 Service":
		return strict(&corev1.Service{})
	case "v1 Namespace":
		return strict(&corev1.Namespace{})
	case "keda.sh/v1alpha1 ScaledObject":
		var obj any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return err
		}
		if err := keda.Validate(obj); err != nil {
			return fmt.Errorf("ScaledObject %s against KEDA's schema: %w", name, err)
		}
		var s scaledObject
		err := yaml.Unmarshal(doc, &s)
		m.scaled[name] = s
		return err
	}
	return fmt.Errorf("kind %s %s is not checked here: add it to the test", head.APIVersion, head.Kind)
}

// kedaSchema compiles the OpenAPI schema of KEDA's ScaledObject CRD, made
// strict as the API server's strict field validation is: an object with
// properties and no additionalProperties takes no other field.
func kedaSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", kedaModule)
	cmd.Dir, cmd.Env = t.TempDir(), append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("download %s (KEDA's CRD schema) through the Go module proxy: %v\n%s", kedaModule, err, out)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Name   string
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				}
			}
		}
	}
	raw, err := os.ReadFile(filepath.Join(mod.Dir, "config", "crd", "bases", "keda.sh_scaledobjects.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatal(err)
	}
	for _, v := range crd.Spec.Versions {
		if v.Name != "v1alpha1" {
			continue
		}
		s := v.Schema.OpenAPIV3Schema
		closeObjects(s)
		c := jsonschema.NewCompiler()
		if err := c.AddResource("scaledobject.json", s); err != nil {
			t.Fatal(err)
		}
		compiled, err := c.Compile("scaledobject.json")
		if err != nil {
			t.Fatalf("compile KEDA's ScaledObject schema: %v", err)
		}
		return compiled
	}
	t.Fatal("KEDA's CRD has no v1alpha1 schema")
	return nil
}

func closeObjects(s map[string]any) {
	if _, ok := s["properties"]; ok && s["additionalProperties"] == nil && s["x-kubernetes-preserve-unknown-fields"] != true {
		s["additionalProperties"] = false
	}
	for _, v := range s {
		switch v := v.(type) {
		case map[string]any:
			closeObjects(v)
		case []any:
			for _, e := range v {
				if m, ok := e.(map[string]any); ok {
					closeObjects(m)
				}
			}
		}
	}
}

func newManifests() *manifests {
	return &manifests{
		deployments: map[string]appsv1.Deployment{}, statefulSets: map[string]appsv1.StatefulSet{},
		jobs: map[string]batchv1.Job{}, scaled: map[string]scaledObject{}, generators: map[string][]string{},
	}
}

func loadK8s(t *testing.T, dir string) *manifests {
	t.Helper()
	m := newManifests()
	loadKustomization(t, dir, m, kedaSchema(t))
	return m
}

// consumersOf are the durable consumers each consumer role serves, from
// the code's own definitions.
var consumersOf = map[string][]streams.Consumer{
	system.RoleExtractor: {streams.ExtractorConsumer},
	system.RoleAnalyzer:  {streams.AnalyzerConsumer, streams.ChatConsumer},
	system.RolePersist:   {streams.PersistConsumer, streams.PersistChatConsumer},
	system.RoleNotifier:  {streams.NotifierConsumer},
	system.RoleIngest:    {streams.IntakeConsumer},
}

func TestKubernetesManifests(t *testing.T) {
	root := repoRoot(t)
	m := loadK8s(t, filepath.Join(root, "deploy", "k8s"))
	checkKubernetes(t, root, m)
}

func checkKubernetes(t *testing.T, root string, m *manifests) {
	t.Helper()
	for name, files := range m.generators {
		for _, f := range files {
			if f == "secrets.env" { // made by the operator from secrets.env.example
				f = "secrets.env.example"
			}
			dir := "deploy/k8s"
			if name == "nats-auth" {
				dir = "deploy/nats"
			}
			mustExist(t, root, filepath.Join(dir, f), "generated into "+name)
		}
	}
	if _, ok := m.generators["nats-auth"]; !ok {
		t.Error("no Secret nats-auth holding the NATS permissions (deploy/nats/auth.conf)")
	}
	if s, ok := m.statefulSets["nats"]; !ok || s.Spec.Replicas == nil || *s.Spec.Replicas != 3 {
		t.Error("no 3-node NATS StatefulSet nats")
	}
	for _, job := range []string{"setup", "migrate"} {
		j, ok := m.jobs[job]
		if !ok || !slices.Equal(j.Spec.Template.Spec.Containers[0].Args, []string{job}) {
			t.Errorf("no Job %s running prism %s", job, job)
		}
	}
	for _, r := range system.Roles() {
		d, ok := m.deployments[r.Name]
		if !ok {
			t.Errorf("role %s has no Deployment", r.Name)
			continue
		}
		checkDeployment(t, r.Name, d, m.pdbs)
		want := consumersOf[r.Name]
		so, ok := m.scaled[r.Name]
		if len(want) == 0 {
			continue // the api scales on requests, not a consumer
		}
		if !ok || so.Spec.ScaleTargetRef.Name != r.Name {
			t.Errorf("consumer role %s has no ScaledObject targeting its Deployment", r.Name)
			continue
		}
		if err := scaledProblem(r.Name, so); err != nil {
			t.Error(err)
		}
	}
}

// scaledProblem says how a consumer role's ScaledObject differs from the
// consumers the code defines for it.
func scaledProblem(role string, so scaledObject) error {
	var got, want []string
	for _, tr := range so.Spec.Triggers {
		if tr.Type != "nats-jetstream" {
			return fmt.Errorf("ScaledObject %s: trigger %s, want nats-jetstream", role, tr.Type)
		}
		got = append(got, tr.Metadata["stream"]+"/"+tr.Metadata["consumer"])
	}
	for _, c := range consumersOf[role] {
		stream := c.Stream
		if stream == "" {
			stream = streams.DocsStream
		}
		want = append(want, stream+"/"+c.Name)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return fmt.Errorf("ScaledObject %s scales on %v, but the role consumes %v", role, got, want)
	}
	return nil
}

func checkDeployment(t *testing.T, role string, d appsv1.Deployment, pdbs []policyv1.PodDisruptionBudget) {
	t.Helper()
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Errorf("Deployment %s: want one container", role)
		return
	}
	c := spec.Containers[0]
	if !slices.Equal(c.Args, []string{role}) {
		t.Errorf("Deployment %s runs %v", role, c.Args)
	}
	if c.ReadinessProbe == nil || c.LivenessProbe == nil {
		t.Errorf("Deployment %s: readiness and liveness probes required", role)
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[res]; !ok {
			t.Errorf("Deployment %s: no %s request", role, res)
		}
		if _, ok := c.Resources.Limits[res]; !ok {
			t.Errorf("Deployment %s: no %s limit", role, res)
		}
	}
	user := ""
	for _, e := range c.Env {
		if e.Name == "NATS_USER" {
			user = e.Value
		}
	}
	if user != role {
		t.Errorf("Deployment %s connects to NATS as %q, want its own user", role, user)
	}
	if g := spec.TerminationGracePeriodSeconds; g == nil || *g <= 25 {
		t.Errorf("Deployment %s: terminationGracePeriodSeconds must exceed SHUTDOWN_GRACE (25s)", role)
	}
	for _, p := range pdbs {
		if p.Spec.Selector != nil && labelsMatch(p.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			return
		}
	}
	t.Errorf("Deployment %s has no PodDisruptionBudget", role)
}

func labelsMatch(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

// TestKubernetesChecksCatchBrokenManifests breaks a copy of the manifests
// in the ways the checks guard against and expects each to be caught.
func TestKubernetesChecksCatchBrokenManifests(t *testing.T) {
	root := repoRoot(t)
	keda := kedaSchema(t)
	for _, tc := range []struct{ name, file, from, to string }{
		{"unknown Deployment field", "roles.yaml", "terminationGracePeriodSeconds: 30", "terminationGracePeriodSecond: 30"},
		{"unknown ScaledObject field", "keda.yaml", "pollingInterval: 10", "pollInterval: 10"},
		{"ScaledObject field of the wrong type", "keda.yaml", "minReplicaCount: 2", "minReplicaCount: two"},
		{"wrong consumer", "keda.yaml", "consumer: extractor", "consumer: extract"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(root, "deploy", "k8s", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(raw, []byte(tc.from)) {
				t.Fatalf("%s no longer contains %q", tc.file, tc.from)
			}
			broken := bytes.Replace(raw, []byte(tc.from), []byte(tc.to), 1)
			m := newManifests()
			var errs []string
			for _, doc := range bytes.Split(broken, []byte("\n---\n")) {
				if err := m.add(doc, keda); err != nil {
					errs = append(errs, err.Error())
				}
			}
			if len(errs) > 0 {
				t.Logf("caught: %s", strings.Join(errs, "; "))
				return
			}
			// Well-formed but wrong: the comparison with the code catches it.
			for role, so := range m.scaled {
				if err := scaledProblem(role, so); err != nil {
					t.Logf("caught: %v", err)
					return
				}
			}
			t.Fatalf("%q -> %q was not caught", tc.from, tc.to)
		})
	}
}
