// swift-tools-version:6.2
// Chapar: a cluster of message relay nodes. No package dependencies by design:
// only the toolchain, the system SQLite and OpenSSL, and our own C shims.
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "Chapar",
    products: [
        .executable(name: "chapard", targets: ["chapard"]),
        .executable(name: "chaparctl", targets: ["chaparctl"]),
        .executable(name: "chapar-loadsim", targets: ["chapar-loadsim"]),
        .executable(name: "chapar-sim", targets: ["chapar-sim"]),
        .library(name: "Client", targets: ["Client"]),
    ],
    targets: [
        // C boundary: system libraries and Linux calls the Glibc module lacks.
        .systemLibrary(
            name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(
            name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]),
        .target(
            name: "CLinux", path: "Sources/CLinux",
            cSettings: [.define("_GNU_SOURCE")]),
        // A SQLite VFS whose write-ahead log gathers a commit's writes into one pwrite.
        .target(name: "CStorageVFS", dependencies: ["CSQLite"], path: "Sources/CStorageVFS"),

        // Vocabulary and pure codecs: no I/O, no clocks, no threads.
        .target(name: "ChaparCore", swiftSettings: strict),
        .target(name: "Wire", dependencies: ["ChaparCore"], swiftSettings: strict),
        .target(name: "Auth", dependencies: ["ChaparCore", "COpenSSL"], swiftSettings: strict),
        .target(name: "Membership", dependencies: ["ChaparCore"], swiftSettings: strict),
        .target(name: "Placement", dependencies: ["ChaparCore"], swiftSettings: strict),
        .target(name: "Consensus", dependencies: ["ChaparCore"], swiftSettings: strict),
        .target(name: "Simulation", dependencies: ["ChaparCore", "Membership", "Consensus"], swiftSettings: strict),

        // I/O layers: each sees the vocabulary, the pure modules and C, never each other.
        .target(name: "Storage", dependencies: ["ChaparCore", "CSQLite", "CStorageVFS", "CLinux"], swiftSettings: strict),
        .target(name: "Transport", dependencies: ["ChaparCore", "CLinux"], swiftSettings: strict),

        // The shell that runs everything, and the client library.
        .target(
            name: "Node",
            dependencies: ["ChaparCore", "Wire", "Storage", "Transport", "Auth", "Membership", "Placement", "Consensus"],
            swiftSettings: strict),
        .target(name: "Client", dependencies: ["ChaparCore", "Wire", "Transport"], swiftSettings: strict),
        .target(name: "LoadSim", dependencies: ["ChaparCore", "Wire", "Transport"], swiftSettings: strict),

        // Executables.
        .executableTarget(name: "chapard", dependencies: ["Node", "Transport"], swiftSettings: strict),
        .executableTarget(
            name: "chaparctl", dependencies: ["ChaparCore", "Client", "Auth"], path: "Tools/chaparctl",
            swiftSettings: strict),
        .executableTarget(
            name: "chapar-loadsim", dependencies: ["ChaparCore", "LoadSim", "Transport"],
            path: "Tools/chapar-loadsim", swiftSettings: strict),

        .executableTarget(
            name: "chapar-sim", dependencies: ["ChaparCore", "Membership", "Simulation"], path: "Tools/chapar-sim",
            swiftSettings: strict),

        // Tests mirror the source modules; EndToEndTests drive real processes.
        .testTarget(name: "ChaparCoreTests", dependencies: ["ChaparCore"], swiftSettings: strict),
        .testTarget(name: "WireTests", dependencies: ["Wire"], swiftSettings: strict),
        .testTarget(name: "AuthTests", dependencies: ["Auth"], swiftSettings: strict),
        .testTarget(name: "PlacementTests", dependencies: ["Placement", "ChaparCore"], swiftSettings: strict),
        .testTarget(name: "ConsensusTests", dependencies: ["Consensus", "Simulation", "ChaparCore"], swiftSettings: strict),
        .testTarget(
            name: "MembershipTests", dependencies: ["Membership", "Simulation", "ChaparCore", "Auth"], swiftSettings: strict),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "StoreCrashHelper"], swiftSettings: strict),
        .executableTarget(
            name: "StoreCrashHelper", dependencies: ["ChaparCore", "Storage"], path: "Tests/StoreCrashHelper",
            swiftSettings: strict),
        .testTarget(name: "TransportTests", dependencies: ["Transport"], swiftSettings: strict),
        .testTarget(name: "LoadSimTests", dependencies: ["LoadSim", "ChaparCore", "Wire"], swiftSettings: strict),
        .testTarget(name: "NodeTests", dependencies: ["Node", "Storage"], swiftSettings: strict),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["Auth", "ChaparCore", "Client", "Wire", "Transport", "chapard", "chaparctl", "chapar-loadsim"],
            swiftSettings: strict),
    ]
)
