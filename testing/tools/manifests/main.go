// Command manifests checks rendered Kubernetes manifests without a cluster (kubectl's
// client-side dry run still needs an API server for discovery and OpenAPI):
//
//	manifests check FILE              every document decodes strictly into its Kubernetes
//	                                  type (unknown or duplicate fields are errors), names
//	                                  itself, and namespaced objects name their namespace
//	manifests compare LEFT RIGHT      the same objects on both sides, equal once labels
//	                                  and annotations that only say who rendered them are
//	                                  dropped (the kustomize base against the Helm chart)
//
// FILE, LEFT and RIGHT are multi-document YAML; "-" reads standard input.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// clusterScoped are the kinds without a namespace that the manifests use. kustomize's
// namespace transformer sets a namespace on kinds it does not know to be cluster-scoped
// (ValidatingAdmissionPolicy among them); the API server ignores it.
var clusterScoped = map[string]bool{
	"Namespace":                        true,
	"CustomResourceDefinition":         true,
	"ClusterRole":                      true,
	"ClusterRoleBinding":               true,
	"ValidatingAdmissionPolicy":        true,
	"ValidatingAdmissionPolicyBinding": true,
	"PriorityClass":                    true,
}

// renderLabels say which tool rendered an object and which release it belongs to, not what
// it is: they are dropped before comparing.
var renderLabels = []string{
	"app.kubernetes.io/instance",
	"app.kubernetes.io/version",
	"app.kubernetes.io/managed-by",
	"helm.sh/chart",
}

type object = map[string]any

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "manifests:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 2 && args[0] == "check":
		return check(args[1])
	case len(args) == 3 && args[0] == "compare":
		return compare(args[1], args[2])
	default:
		return errors.New("usage: manifests check FILE | manifests compare LEFT RIGHT")
	}
}

func read(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(path)
}

// documents splits a multi-document YAML file into JSON documents, skipping empty ones.
func documents(path string) ([][]byte, error) {
	data, err := read(path)
	if err != nil {
		return nil, err
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, len(docs)+1, err)
		}
		if t := bytes.TrimSpace(js); len(t) == 0 || bytes.Equal(t, []byte("null")) {
			continue
		}
		docs = append(docs, js)
	}
}

// key names an object: group/kind namespace/name.
func key(o object) string {
	apiVersion, _ := o["apiVersion"].(string)
	kind, _ := o["kind"].(string)
	group := schema.FromAPIVersionAndKind(apiVersion, kind).Group
	meta, _ := o["metadata"].(map[string]any)
	ns, _ := meta["namespace"].(string)
	name, _ := meta["name"].(string)
	return fmt.Sprintf("%s/%s %s/%s", group, kind, ns, name)
}

func strictDecoder() runtime.Decoder {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{scheme.AddToScheme, apiextensionsv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
}

func check(path string) error {
	docs, err := documents(path)
	if err != nil {
		return err
	}
	decoder := strictDecoder()
	var problems []string
	seen := map[string]bool{}
	counts := map[string]int{}
	for i, doc := range docs {
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			problems = append(problems, fmt.Sprintf("document %d: %v", i+1, err))
			continue
		}
		k := key(o)
		kind, _ := o["kind"].(string)
		meta, _ := o["metadata"].(map[string]any)
		ns, _ := meta["namespace"].(string)
		name, _ := meta["name"].(string)
		switch {
		case o["apiVersion"] == nil || kind == "" || name == "":
			problems = append(problems, fmt.Sprintf("document %d: no apiVersion, kind or metadata.name", i+1))
			continue
		case clusterScoped[kind] && ns != "":
			problems = append(problems, k+": a cluster-scoped object with a namespace")
		case !clusterScoped[kind] && ns == "":
			problems = append(problems, k+": no metadata.namespace")
		}
		if seen[k] {
			problems = append(problems, k+": rendered twice")
		}
		seen[k] = true
		if _, _, err := decoder.Decode(doc, nil, nil); err != nil {
			if runtime.IsNotRegisteredError(err) {
				// Kinds of other projects' CRDs (ServiceMonitor, Certificate, …): their
				// structure was checked above, their fields only by their servers.
				counts[kind+" (not typed)"]++
				continue
			}
			problems = append(problems, fmt.Sprintf("%s: %v", k, err))
			continue
		}
		counts[kind]++
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s:\n  %s", path, strings.Join(problems, "\n  "))
	}
	kinds := make([]string, 0, len(counts))
	for k, n := range counts {
		kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(kinds)
	fmt.Printf("%s: %d objects valid (%s)\n", path, len(docs), strings.Join(kinds, ", "))
	return nil
}

// normalise drops what only says who rendered the object.
func normalise(o object) {
	meta, _ := o["metadata"].(map[string]any)
	if kind, _ := o["kind"].(string); clusterScoped[kind] {
		delete(meta, "namespace")
	}
	if kind, _ := o["kind"].(string); kind == "CustomResourceDefinition" {
		// Helm installs a chart's crds/ as they are, without templating: no labels.
		delete(meta, "labels")
	}
	dropRenderMetadata(meta)
	if spec, ok := o["spec"].(map[string]any); ok {
		if tmpl, ok := spec["template"].(map[string]any); ok {
			if tmeta, ok := tmpl["metadata"].(map[string]any); ok {
				dropRenderMetadata(tmeta)
			}
		}
	}
}

func dropRenderMetadata(meta map[string]any) {
	if meta == nil {
		return
	}
	if labels, ok := meta["labels"].(map[string]any); ok {
		for _, l := range renderLabels {
			delete(labels, l)
		}
		if len(labels) == 0 {
			delete(meta, "labels")
		}
	}
	if annotations, ok := meta["annotations"].(map[string]any); ok {
		for a := range annotations {
			if strings.HasPrefix(a, "helm.sh/") {
				delete(annotations, a)
			}
		}
		if len(annotations) == 0 {
			delete(meta, "annotations")
		}
	}
}

func objects(path string) (map[string]object, error) {
	docs, err := documents(path)
	if err != nil {
		return nil, err
	}
	out := map[string]object{}
	for i, doc := range docs {
		var o object
		if err := yaml.Unmarshal(doc, &o); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, i+1, err)
		}
		normalise(o)
		k := key(o)
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%s: %s rendered twice", path, k)
		}
		out[k] = o
	}
	return out, nil
}

func compare(leftPath, rightPath string) error {
	left, err := objects(leftPath)
	if err != nil {
		return err
	}
	right, err := objects(rightPath)
	if err != nil {
		return err
	}
	keys := map[string]bool{}
	for k := range left {
		keys[k] = true
	}
	for k := range right {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	var problems []string
	for _, k := range sorted {
		l, inLeft := left[k]
		r, inRight := right[k]
		switch {
		case !inRight:
			problems = append(problems, fmt.Sprintf("%s: only in %s", k, leftPath))
		case !inLeft:
			problems = append(problems, fmt.Sprintf("%s: only in %s", k, rightPath))
		default:
			if d := cmp.Diff(l, r); d != "" {
				problems = append(problems, fmt.Sprintf("%s differs (-%s +%s):\n%s", k, leftPath, rightPath, d))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d of %d objects differ:\n%s", len(problems), len(sorted), strings.Join(problems, "\n"))
	}
	fmt.Printf("%s and %s: the same %d objects\n", leftPath, rightPath, len(sorted))
	return nil
}
