import ArgumentParser
import Logging
import ServiceLifecycle
import SluiceCore
import NIOCore
import SluiceProxy

#if canImport(Glibc)
import Glibc
#endif

/// Loads the config, builds the runtime and serves until SIGTERM / SIGINT.
func runProxy(role: ProxyRole, options: ProxyOptions) async throws {
    let path = try resolveConfigPath(options.config)
    // A closed stdout (access log) or peer must be an error value, not a fatal signal.
    signal(SIGPIPE, SIG_IGN)
    // One process-wide level that the admin port's /logging can change at run time.
    let levelBox = LogLevelBox(Logger.Level(rawValue: options.logLevel) ?? .info)
    let logger = Logger(label: "sluice.\(role.rawValue)") { DynamicLogHandler(label: $0, levelBox: levelBox) }

    let snapshot: SluiceSnapshot
    let namespace = options.workload.resolvedNamespace
    let identity = try options.workload.resolvedIdentity()
    switch SluiceSnapshot.load(configPath: path, namespace: namespace, identity: identity) {
    case .success(let loaded):
        snapshot = loaded
    case .failure(let diagnostics):
        for diagnostic in diagnostics { printError("\(diagnostic)") }
        throw ExitCode(1)
    }
    // A rejected object is left out and the rest serves, as after a reload.
    for diagnostic in snapshot.diagnostics {
        if diagnostic.isError { logger.error("\(diagnostic)") } else { logger.notice("\(diagnostic)") }
    }

    let accessLog: AccessLogWriter?
    if snapshot.config.accessLog.enabled {
        do {
            accessLog = try AccessLogWriter(
                path: snapshot.config.accessLog.path,
                format: AccessLogFormat(rawValue: snapshot.config.accessLog.format) ?? .json
            )
        } catch {
            printError("sluice: access log: \(error)")
            throw ExitCode(1)
        }
    } else {
        accessLog = nil
    }

    let certificates = try options.certs.store(for: snapshot.config, role: role, logger: logger)
    // Issue 22: when the DNS proxy serves this sidecar it sees every name the pod resolves,
    // so the policy enforces opaque entries without addresses by those names (ResolvedNames).
    let book = LearnedAddressBook(LearnedAddresses(snapshot.config.dns))
    let servesDNS = role == .sidecar && (snapshot.config.dns.proxy || options.environmentCapture.dns)
    let runtime = ProxyRuntime(
        role: role,
        config: ActiveConfig(
            snapshot: snapshot, role: role, forceAudit: options.resolvedAudit, forceAutoAllocate: options.environmentAutoAllocate,
            names: servesDNS ? book : nil),
        accessLog: accessLog,
        logger: logger,
        logLevel: levelBox,
        certificates: certificates,
        credentialsDirectory: options.certs.resolvedCredentialsDirectory,
        learned: book
    )
    logger.info(
        "starting \(role.rawValue)",
        metadata: [
            "config": "\(path)", "namespace": "\(namespace)", "serviceEntries": "\(snapshot.registry.entries.count)",
            "rejected": "\(snapshot.rejectedObjects)",
        ]
    )
    runtime.metrics.registryRejected(snapshot.rejectedObjects)
    let server = ProxyServer(
        runtime: runtime,
        ports: options.ports,
        concurrency: options.concurrency ?? System.coreCount
    )
    let watcher = ConfigWatcher(
        configPath: path, runtime: runtime, forceAudit: options.resolvedAudit, forceAutoAllocate: options.environmentAutoAllocate)
    var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
        .init(service: server, successTerminationBehavior: .gracefullyShutdownGroup),
        .init(service: watcher, successTerminationBehavior: .gracefullyShutdownGroup),
    ]
    if let certificates {
        services.append(.init(service: CertificateWatcher(store: certificates, runtime: runtime)))
    }
    // Sidecar, issue 22: the DNS proxy (`dns.proxy`, where sluice-init --capture-dns sends
    // port 53) and the NFQUEUE reader (`udp.capture`, sluice-init --capture-udp), sharing
    // the names the pod resolved.
    if role == .sidecar {
        let forced = options.environmentCapture
        if servesDNS {
            let dns = DNSProxy(runtime: runtime, book: book, threads: options.concurrency ?? System.coreCount)
            services.append(.init(service: dns, successTerminationBehavior: .gracefullyShutdownGroup))
        }
        if snapshot.config.udp.capture || forced.udp {
            let udp = UDPGuard(runtime: runtime, queue: snapshot.config.udp.queue, book: book)
            services.append(.init(service: udp, successTerminationBehavior: .gracefullyShutdownGroup))
        }
    }
    let group = ServiceGroup(
        configuration: .init(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
    )
    do {
        try await group.run()
    } catch {
        printError("sluice: \(error)")
        throw ExitCode(1)
    }
}

/// One line on stderr.
func printError(_ message: String) {
    var line = message
    line.append("\n")
    // Straight to fd 2: the C `stderr` global is shared mutable state to strict concurrency.
    _ = line.withCString { write(2, $0, strlen($0)) }
}
