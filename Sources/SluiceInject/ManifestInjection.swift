import Yams

/// `sluice inject`: adds the sidecar to every pod a manifest describes (Pods, Deployments,
/// StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs, CronJobs, and the
/// items of Lists), in a multi-document YAML stream, like `istioctl kube-inject`.
///
/// Other kinds pass through unchanged; a pod that is already injected, opted out or on the
/// host network is left as it is, so injecting twice changes nothing. Comments are not kept
/// (the output is re-serialised, as kube-inject's is).
public struct ManifestInjection: Sendable {
    /// What to add to each pod.
    public let template: SidecarTemplate

    /// An injector with this template.
    public init(template: SidecarTemplate) {
        self.template = template
    }

    /// Where a kind keeps its pod: the path of mapping keys to the object with `metadata`
    /// and `spec` of a pod. Keyed by kind, then by API group (`""` is the core group).
    static let podPaths: [String: (groups: Set<String>, path: [String])] = [
        "Pod": ([""], []),
        "Deployment": (["apps", "extensions"], ["spec", "template"]),
        "StatefulSet": (["apps"], ["spec", "template"]),
        "DaemonSet": (["apps", "extensions"], ["spec", "template"]),
        "ReplicaSet": (["apps", "extensions"], ["spec", "template"]),
        "ReplicationController": ([""], ["spec", "template"]),
        "Job": (["batch"], ["spec", "template"]),
        "CronJob": (["batch"], ["spec", "jobTemplate", "spec", "template"]),
    ]

    /// Injects every document of `yaml` (read from `path`, named in errors) and returns the
    /// resulting YAML stream.
    public func inject(yaml: String, path: String) throws(InjectError) -> String {
        let text = yaml.hasPrefix("\u{FEFF}") ? String(yaml.dropFirst()) : yaml
        var documents: [Node] = []
        do {
            var stream = try Yams.compose_all(yaml: text)
            while let node = stream.next() { documents.append(node) }
            if let error = stream.error { throw error }
        } catch {
            throw InjectError.syntax(error, path: path)
        }
        var output: [String] = []
        for document in documents {
            if document.null != nil { continue } // an empty document, e.g. after a trailing ---
            let injected = try inject(document: document, path: path)
            do {
                output.append(try Yams.serialize(node: injected, sortKeys: false))
            } catch {
                throw InjectError(path: path, line: YAMLNodes.line(document), message: "cannot write the result: \(error)")
            }
        }
        return output.joined(separator: "---\n")
    }

    /// Injects one resource (or the items of a List); anything else comes back as it was.
    func inject(document: Node, path: String) throws(InjectError) -> Node {
        guard var object = document.mapping, let kind = YAMLNodes.text(object, "kind") else { return document }
        if kind.hasSuffix("List"), let items = YAMLNodes.value(object, "items")?.sequence {
            var injected: [Node] = []
            for item in items { injected.append(try inject(document: item, path: path)) }
            YAMLNodes.set(&object, "items", .sequence(Node.Sequence(injected, items.tag, items.style, items.mark)))
            return .mapping(object)
        }
        let apiVersion = YAMLNodes.text(object, "apiVersion") ?? ""
        let group = apiVersion.contains("/") ? String(apiVersion.split(separator: "/")[0]) : ""
        guard let place = Self.podPaths[kind], place.groups.contains(group) else { return document }
        return try injectPod(in: document, at: place.path[...], kind: kind, path: path)
    }

    /// Walks `keys` down to the pod and injects there.
    private func injectPod(in node: Node, at keys: ArraySlice<String>, kind: String, path: String) throws(InjectError) -> Node {
        guard var mapping = node.mapping else {
            throw InjectError(path: path, line: YAMLNodes.line(node), message: "\(kind): expected a mapping")
        }
        if let key = keys.first {
            guard let child = YAMLNodes.value(mapping, key) else {
                throw InjectError(path: path, line: YAMLNodes.line(node), message: "\(kind): \(key) is missing")
            }
            YAMLNodes.set(&mapping, key, try injectPod(in: child, at: keys.dropFirst(), kind: kind, path: path))
            return .mapping(mapping)
        }
        guard let spec = YAMLNodes.value(mapping, "spec")?.mapping else {
            throw InjectError(path: path, line: YAMLNodes.line(node), message: "\(kind): the pod has no spec mapping")
        }
        let metadata = YAMLNodes.value(mapping, "metadata")?.mapping
        switch try PodInjection(template: template).inject(metadata: metadata, spec: spec, path: path) {
        case .skipped:
            return node
        case .injected(let newMetadata, let newSpec):
            YAMLNodes.set(&mapping, "metadata", .mapping(newMetadata))
            YAMLNodes.set(&mapping, "spec", .mapping(newSpec))
            return .mapping(mapping)
        }
    }
}
