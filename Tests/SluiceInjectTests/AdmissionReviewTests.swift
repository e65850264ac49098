import Foundation
@testable import SluiceInject
import XCTest
import Yams

/// Real AdmissionReview requests (the format Kubernetes documents, as the API server sends
/// them for a ReplicaSet's pod) through the webhook's logic; the returned JSONPatch, applied
/// to the pod, must give exactly what `sluice inject` makes of the same pod.
final class AdmissionReviewTests: XCTestCase {
    private let responder = AdmissionReviewResponder(injection: ManifestInjection(template: InjectFixtures.template))

    private func json(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
    }

    /// RFC 6902 `add` (the only operation the responder emits), on Foundation's JSON values.
    private func add(_ value: Any, at tokens: ArraySlice<String>, in document: Any) throws -> Any {
        guard let token = tokens.first else { return value }
        let key = token.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
        if var object = document as? [String: Any] {
            object[key] = tokens.count == 1 ? value : try add(value, at: tokens.dropFirst(), in: object[key] ?? [String: Any]())
            return object
        }
        if var array = document as? [Any] {
            if key == "-", tokens.count == 1 { array.append(value); return array }
            let index = try XCTUnwrap(Int(key))
            if tokens.count == 1 { array.insert(value, at: index) } else { array[index] = try add(value, at: tokens.dropFirst(), in: array[index]) }
            return array
        }
        throw XCTSkip("patch path through a scalar")
    }

    private func apply(patch: String, to document: Any) throws -> Any {
        var result = document
        for operation in try XCTUnwrap(try json(patch) as? [[String: Any]]) {
            XCTAssertEqual(operation["op"] as? String, "add")
            let path = try XCTUnwrap(operation["path"] as? String)
            result = try add(try XCTUnwrap(operation["value"]), at: path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)[...], in: result)
        }
        return result
    }

    func testPatchedPodEqualsSluiceInject() throws {
        let request = try InjectFixtures.text("admission/sleep-pod-create.json")
        let answer = responder.respond(to: request)
        XCTAssertEqual(answer.status, 200)
        let review = try XCTUnwrap(try json(answer.body) as? [String: Any])
        XCTAssertEqual(review["apiVersion"] as? String, "admission.k8s.io/v1")
        XCTAssertEqual(review["kind"] as? String, "AdmissionReview")
        let response = try XCTUnwrap(review["response"] as? [String: Any])
        XCTAssertEqual(response["uid"] as? String, "705ab4f5-6393-11e8-b7cc-42010a800002")
        XCTAssertEqual(response["allowed"] as? Bool, true)
        XCTAssertEqual(response["patchType"] as? String, "JSONPatch")
        let patch = try XCTUnwrap(String(data: try XCTUnwrap(Data(base64Encoded: try XCTUnwrap(response["patch"] as? String))), encoding: .utf8))

        let requestObject = try XCTUnwrap(((try json(request) as? [String: Any])?["request"] as? [String: Any])?["object"])
        let patched = try apply(patch: patch, to: requestObject)

        // The same pod through `sluice inject`, as YAML in and YAML out, then as JSON.
        let pod = try XCTUnwrap(try Yams.compose(yaml: request)?.mapping.flatMap { YAMLNodes.value($0, "request")?.mapping }
            .flatMap { YAMLNodes.value($0, "object") })
        let injectedYAML = try ManifestInjection(template: InjectFixtures.template).inject(yaml: try Yams.serialize(node: pod), path: "pod.yaml")
        let injected = try json(JSONText.write(try XCTUnwrap(try Yams.compose(yaml: injectedYAML))))
        XCTAssertEqual(patched as? NSDictionary, injected as? NSDictionary)
        XCTAssertTrue(injectedYAML.contains("name: sluice-init"))
    }

    func testOptedOutPodIsAllowedWithoutPatch() throws {
        var request = try InjectFixtures.text("admission/sleep-pod-create.json")
        request = request.replacingOccurrences(of: #""labels": {"app": "sleep","#, with: #""labels": {"sidecar.istio.io/inject": "false", "app": "sleep","#)
        let response = try XCTUnwrap((try json(responder.respond(to: request).body) as? [String: Any])?["response"] as? [String: Any])
        XCTAssertEqual(response["allowed"] as? Bool, true)
        XCTAssertNil(response["patch"])
    }

    func testInjectingAnInjectedPodChangesNothing() throws {
        let request = try InjectFixtures.text("admission/sleep-pod-create.json")
        let first = try XCTUnwrap((try json(responder.respond(to: request).body) as? [String: Any])?["response"] as? [String: Any])
        let patch = try XCTUnwrap(String(data: try XCTUnwrap(Data(base64Encoded: try XCTUnwrap(first["patch"] as? String))), encoding: .utf8))
        var review = try XCTUnwrap(try json(request) as? [String: Any])
        var inner = try XCTUnwrap(review["request"] as? [String: Any])
        inner["object"] = try apply(patch: patch, to: try XCTUnwrap(inner["object"]))
        review["request"] = inner
        let again = String(data: try JSONSerialization.data(withJSONObject: review), encoding: .utf8) ?? ""
        let second = try XCTUnwrap((try json(responder.respond(to: again).body) as? [String: Any])?["response"] as? [String: Any])
        XCTAssertEqual(second["allowed"] as? Bool, true)
        XCTAssertNil(second["patch"])
    }

    func testUninjectablePodIsRefusedWithTheReason() throws {
        var request = try InjectFixtures.text("admission/sleep-pod-create.json")
        request = request.replacingOccurrences(of: #""generateName": "sleep-5d5f9d4b8c-","#,
                                               with: #""generateName": "sleep-5d5f9d4b8c-", "annotations": {"proxy.istio.io/config": "concurrency: lots"},"#)
        let response = try XCTUnwrap((try json(responder.respond(to: request).body) as? [String: Any])?["response"] as? [String: Any])
        XCTAssertEqual(response["allowed"] as? Bool, false)
        let message = try XCTUnwrap((response["status"] as? [String: Any])?["message"] as? String)
        XCTAssertTrue(message.contains("proxy.istio.io/config: concurrency must be a whole number"), message)
    }

    func testOtherKindsAndBadBodies() throws {
        let deployment = #"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"apps","version":"v1","kind":"Deployment"},"object":{"kind":"Deployment","spec":{}}}}"#
        XCTAssertEqual(responder.respond(to: deployment).body,
                       #"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u1","allowed":true}}"#)
        XCTAssertEqual(responder.respond(to: "{").status, 400)
        XCTAssertEqual(responder.respond(to: #"{"kind":"AdmissionReview"}"#).status, 400)
        XCTAssertEqual(responder.respond(to: #"{"request":{"object":{}}}"#).status, 400)
    }

    func testJSONPointerEscapesAnnotationKeys() {
        XCTAssertEqual(AdmissionReviewResponder.pointerToken("sluice.io/status"), "sluice.io~1status")
        XCTAssertEqual(AdmissionReviewResponder.pointerToken("a~b"), "a~0b")
    }
}
