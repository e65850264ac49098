import Foundation
import Yams

/// The mutating admission webhook's logic, without the server: an `AdmissionReview`
/// (`admission.k8s.io/v1`) request in, the review with its response out, the response
/// carrying a JSONPatch that turns the pod into what `sluice inject` makes of it.
///
/// Which pods are sent here is the MutatingWebhookConfiguration's business (the namespace
/// label `sluice-injection=enabled`, or the pod label `sluice.io/inject=true`); the pod's own
/// opt-outs (`sidecar.istio.io/inject: "false"`, hostNetwork) are honoured here as by
/// `sluice inject`. A pod that cannot be injected (a malformed `proxy.istio.io/config`) is
/// refused with the reason, so that no pod in an injected namespace runs without its sidecar.
public struct AdmissionReviewResponder: Sendable {
    /// The injection shared with `sluice inject`.
    public let injection: ManifestInjection

    /// A responder that injects with `injection`.
    public init(injection: ManifestInjection) {
        self.injection = injection
    }

    /// What the server answers.
    public struct Answer: Sendable, Equatable {
        /// The HTTP status: 200 with a review, 400 when the body is not an AdmissionReview.
        public var status: Int
        /// The response body (JSON).
        public var body: String
    }

    /// Answers one request body.
    public func respond(to body: String) -> Answer {
        let root: Node?
        do {
            root = try Yams.compose(yaml: body)
        } catch {
            return Self.badRequest("the body is not JSON: \(InjectError.syntax(error, path: "request").message)")
        }
        guard let review = root?.mapping, let request = YAMLNodes.value(review, "request")?.mapping else {
            return Self.badRequest("not an AdmissionReview: no request")
        }
        guard let uid = YAMLNodes.text(request, "uid"), !uid.isEmpty else {
            return Self.badRequest("the AdmissionReview's request has no uid")
        }
        let apiVersion = YAMLNodes.text(review, "apiVersion") ?? "admission.k8s.io/v1"
        guard let object = YAMLNodes.value(request, "object")?.mapping,
              YAMLNodes.text(object, "kind") ?? "Pod" == "Pod",
              YAMLNodes.value(request, "kind")?.mapping.flatMap({ YAMLNodes.text($0, "kind") }) ?? "Pod" == "Pod",
              let spec = YAMLNodes.value(object, "spec")?.mapping else {
            return Self.review(apiVersion: apiVersion, uid: uid, patch: nil, denial: nil)
        }
        let name = YAMLNodes.value(object, "metadata")?.mapping.flatMap { YAMLNodes.text($0, "name") ?? YAMLNodes.text($0, "generateName") } ?? "pod"
        let metadata = YAMLNodes.value(object, "metadata")?.mapping
        do {
            switch try PodInjection(template: injection.template).inject(metadata: metadata, spec: spec, path: "pod \(name)") {
            case .skipped:
                return Self.review(apiVersion: apiVersion, uid: uid, patch: nil, denial: nil)
            case .injected(let newMetadata, let newSpec):
                let patch = Self.patch(from: object, metadata: newMetadata, spec: newSpec)
                return Self.review(apiVersion: apiVersion, uid: uid, patch: patch, denial: nil)
            }
        } catch {
            return Self.review(apiVersion: apiVersion, uid: uid, patch: nil, denial: "sluice injection failed: \(error)")
        }
    }

    /// JSONPatch operations that turn `object` into one with these metadata and spec: one
    /// `add` (which replaces an existing member) per top-level field of either that changed.
    static func patch(from object: Node.Mapping, metadata: Node.Mapping, spec: Node.Mapping) -> String {
        var operations: [String] = []
        for (section, after) in [("metadata", metadata), ("spec", spec)] {
            let before = YAMLNodes.value(object, section)?.mapping
            guard before != nil else {
                operations.append(#"{"op":"add","path":"/\#(section)","value":\#(JSONText.write(.mapping(after)))}"#)
                continue
            }
            for (key, value) in after {
                let name = key.scalar?.string ?? ""
                if let old = before.flatMap({ YAMLNodes.value($0, name) }), old == value { continue }
                operations.append(#"{"op":"add","path":"/\#(section)/\#(pointerToken(name))","value":\#(JSONText.write(value))}"#)
            }
        }
        return "[" + operations.joined(separator: ",") + "]"
    }

    /// A JSON Pointer reference token (RFC 6901): `~` and `/` escaped.
    static func pointerToken(_ key: String) -> String {
        key.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }

    private static func review(apiVersion: String, uid: String, patch: String?, denial: String?) -> Answer {
        var response = "{\"uid\":"
        JSONText.string(uid, into: &response)
        if let denial {
            response += ",\"allowed\":false,\"status\":{\"code\":400,\"message\":"
            JSONText.string(denial, into: &response)
            response += "}"
        } else {
            response += ",\"allowed\":true"
            if let patch {
                response += ",\"patchType\":\"JSONPatch\",\"patch\":\"" + Data(patch.utf8).base64EncodedString() + "\""
            }
        }
        response += "}"
        var body = "{\"apiVersion\":"
        JSONText.string(apiVersion, into: &body)
        body += ",\"kind\":\"AdmissionReview\",\"response\":" + response + "}"
        return Answer(status: 200, body: body)
    }

    private static func badRequest(_ message: String) -> Answer {
        var body = "{\"error\":"
        JSONText.string(message, into: &body)
        return Answer(status: 400, body: body + "}")
    }
}
