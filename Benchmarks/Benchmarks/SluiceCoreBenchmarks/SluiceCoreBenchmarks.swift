// Micro-benchmarks of the per-connection / per-request pure functions on Sluice's data path:
// each runs once (or more) for every connection or request the sidecar handles, so their
// time and, above all, their allocations add directly to CPU per request.
//
//   cd Benchmarks && swift package benchmark

import Benchmark
import NIOCore
import SluiceCore

/// A registry like a big mesh's: `count` hosts on :80 (HTTP) and :443 (TLS), plus a few
/// wildcards, so lookups hit the same dictionaries a real 10k-entry registry fills.
func makeRegistry(count: Int) -> Registry {
    var entries: [ServiceEntry] = []
    entries.reserveCapacity(count + 10)
    for i in 0..<count {
        entries.append(ServiceEntry(
            name: "svc-\(i)",
            hosts: ["svc-\(i).bench"],
            ports: [
                ServicePort(number: 80, name: "http", protocol: .http),
                ServicePort(number: 443, name: "tls", protocol: .tls),
            ],
            resolution: .dns
        ))
    }
    for i in 0..<10 {
        entries.append(ServiceEntry(
            name: "wild-\(i)",
            hosts: ["*.zone-\(i).bench"],
            ports: [ServicePort(number: 80, name: "http", protocol: .http)],
            resolution: .dns
        ))
    }
    return Registry(entries)
}

/// What the sidecar logs for a typical allowed HTTP request.
let sampleRecord = AccessLogRecord(
    startTime: 1_764_000_000_123,
    method: "GET",
    path: "/1k",
    protocol: "HTTP/1.1",
    responseCode: 200,
    bytesReceived: 0,
    bytesSent: 1024,
    duration: 1,
    upstreamServiceTime: 1,
    userAgent: "wrk",
    authority: "origin.bench",
    upstreamHost: "198.51.100.2:80",
    upstreamCluster: "outbound|80||origin.bench",
    upstreamLocalAddress: "198.51.100.1:40000",
    downstreamLocalAddress: "198.51.100.2:80",
    downstreamRemoteAddress: "198.51.100.1:39999",
    routeName: "default"
)

/// The HTTP path's decision for svc-42.bench:80 with `virtualServices` VirtualServices (one
/// per host svc-0…, each one http route with a uri prefix match and a plain route), compiled
/// as a sidecar compiles them: 0 is the path without routing objects.
func makePolicy(virtualServices: Int) -> Policy {
    let registry = makeRegistry(count: 100)
    var policy = Policy(mode: .registryOnly, registry: registry, gateway: nil)
    guard virtualServices > 0 else { return policy }
    let yaml = (0..<virtualServices).map { i in
        """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: vs-\(i)}
        spec:
          hosts: [svc-\(i).bench]
          http:
          - name: api-\(i)
            match: [{uri: {prefix: /api}}]
            route: [{destination: {host: svc-\(i).bench, port: {number: 80}}}]
          - name: default-\(i)
            route: [{destination: {host: svc-\(i).bench, port: {number: 80}}}]
        """
    }.joined(separator: "\n---\n")
    let routing = RegistryLoader.parse(yaml: yaml, path: "bench.yaml").routing
    policy.routes = RouteTable.compile(routing, role: .sidecar, identity: WorkloadIdentity())
    return policy
}

let requestHead = "GET /1k HTTP/1.1\r\nHost: origin.bench\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .instructions, .mallocCountTotal, .throughput],
        warmupIterations: 100,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 10_000
    )

    let helloBuffer = ByteBuffer(bytes: curlClientHello)
    Benchmark("ClientHelloParser.parse (curl ClientHello, 517 B)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(ClientHelloParser.parse(helloBuffer))
        }
    }

    // UDP 443 under --capture-udp: every new QUIC flow's first Initial is decrypted and its
    // ClientHello read (keys from the connection ID, header protection, AES-128-GCM, frames).
    let initial = QUICClientInitial.make(
        frames: QUICClientInitial.cryptoFrame(offset: 0, curlClientHello.dropFirst(5)),
        connectionID: [0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08])
    Benchmark("QUICInitialSniffer.feed (1200 B client Initial carrying curl's ClientHello)") { benchmark in
        for _ in benchmark.scaledIterations {
            var sniffer = QUICInitialSniffer()
            blackHole(sniffer.feed(datagram: initial))
        }
    }

    let headBuffer = ByteBuffer(string: requestHead)
    Benchmark("ProtocolDetector.detect (HTTP GET head)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(ProtocolDetector.detect(headBuffer))
        }
    }
    Benchmark("ProtocolDetector.detect (TLS ClientHello)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(ProtocolDetector.detect(helloBuffer))
        }
    }

    // Built once outside the measured closures: the build is a load-time cost, the lookup a
    // per-request one.
    let registry10k = makeRegistry(count: 10_000)
    let registry10 = makeRegistry(count: 10)
    Benchmark("Registry.lookup exact hit (10,000 entries)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(registry10k.lookup(host: "svc-4242.bench", port: 80))
        }
    }
    Benchmark("Registry.lookup exact hit, Host with port (10,000 entries)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(registry10k.lookup(host: "SVC-4242.bench:80", port: 80))
        }
    }
    Benchmark("Registry.lookup wildcard hit (10,000 entries)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(registry10k.lookup(host: "a.b.zone-7.bench", port: 80))
        }
    }
    Benchmark("Registry.lookup miss (10,000 entries)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(registry10k.lookup(host: "unregistered.example.bench", port: 80))
        }
    }
    Benchmark("Registry.lookup exact hit (10 entries)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(registry10.lookup(host: "svc-4.bench", port: 80))
        }
    }
    Benchmark(
        "Registry.init (10,000 entries)",
        configuration: .init(scalingFactor: .one, maxDuration: .seconds(3), maxIterations: 20)
    ) { benchmark in
        let entries = (0..<10_000).map {
            ServiceEntry(name: "svc-\($0)", hosts: ["svc-\($0).bench"],
                         ports: [ServicePort(number: 80, name: "http", protocol: .http)], resolution: .dns)
        }
        benchmark.startMeasurement()
        blackHole(Registry(entries))
        benchmark.stopMeasurement()
    }

    // Policy.decide for one HTTP request: the HTTP path calls it once per new authority.
    let noRoutes = makePolicy(virtualServices: 0)
    let fiftyRoutes = makePolicy(virtualServices: 50)
    let destination = IPAddress("198.51.100.2") ?? .v4(0)
    let authority = Authority(host: "svc-42.bench")
    let facts = ConnectionFacts(kind: .http(authority), destination: destination, port: 80,
                                request: HTTPRequestView(method: "GET", path: "/api/x"))
    // What today's call site passes: the authority alone.
    let authorityOnly = ConnectionFacts(kind: .http(authority), destination: destination, port: 80)
    Benchmark("Policy.decide HTTP (no routing objects)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(noRoutes.decide(authorityOnly))
        }
    }
    Benchmark("Policy.decide HTTP (50 VirtualServices, 100 routes)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(fiftyRoutes.decide(facts))
        }
    }

    Benchmark("AccessLogRecord.appendJSON (allowed HTTP request)") { benchmark in
        var buffer = ByteBufferAllocator().buffer(capacity: 2048)
        for _ in benchmark.scaledIterations {
            buffer.clear()
            sampleRecord.appendJSON(to: &buffer)
            blackHole(buffer.readableBytes)
        }
    }
}
