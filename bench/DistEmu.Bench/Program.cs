using BenchmarkDotNet.Running;
using DistEmu.Bench;

// dotnet run -c Release --project bench/DistEmu.Bench -- sim [--inproc] [BenchmarkDotNet args]
// dotnet run -c Release --project bench/DistEmu.Bench -- memory
// dotnet run -c Release --project bench/DistEmu.Bench -- quick [reps]
// dotnet run -c Release --project bench/DistEmu.Bench -- engine [reps]
// dotnet run -c Release --project bench/DistEmu.Bench -- orleans [reps] [--pings N] [--ops N]
// dotnet run -c Release --project bench/DistEmu.Bench -- replay [--lines N] [--orleans]
// dotnet run -c Release --project bench/DistEmu.Bench -- tracing [reps]
// dotnet run -c Release --project bench/DistEmu.Bench -- launch [large-1024|huge-4096|all] [--timeout seconds] [--reps N]
// dotnet run -c Release --project bench/DistEmu.Bench -- grains [large-1024|huge-4096|all] [--count N] [--ops N]
string mode = args.Length > 0 ? args[0].TrimStart('-') : "";
string[] rest = args.Skip(1).ToArray();
switch (mode)
{
    case "sim":
        SimPageFault1.InProcess = rest.Contains("--inproc");
        rest = rest.Where(a => a != "--inproc").ToArray();
        if (!rest.Any(a => a is "--filter" or "-f" or "--list" or "--info"))
            rest = [.. rest, "--filter", "*"];
        if (!rest.Contains("--artifacts"))
            rest = [.. rest, "--artifacts", Path.Combine(BenchDirectory(), "BenchmarkDotNet.Artifacts")];
        BenchmarkSwitcher.FromTypes([typeof(SimPageFault1)]).Run(rest);
        return 0;
    case "memory":
        return MemoryBench.Run();
    case "quick":
        int reps = rest.Length > 0 && int.TryParse(rest[0], out int n) && n > 0 ? n : 3;
        return QuickBench.Run(reps);
    case "engine":
        return EngineBench.Run(rest.Length > 0 && int.TryParse(rest[0], out int er) && er > 0 ? er : 3);
    case "orleans":
        {
            int oreps = rest.Length > 0 && int.TryParse(rest[0], out int r) && r > 0 ? r : 3;
            return OrleansBench.Run(oreps, (int?)Option(rest, "--pings"), Option(rest, "--ops"));
        }
    case "quantum":
        return QuantumBench.Run(rest.Length > 0 && int.TryParse(rest[0], out int qr) && qr > 0 ? qr : 3, Option(rest, "--ops"));
    case "tracing":
        return TracingBench.Run(rest.Length > 0 && int.TryParse(rest[0], out int tr) && tr > 0 ? tr : 3);
    case "replay":
        return ReplayBench.Run(Option(rest, "--lines") ?? 10_000_000, rest.Contains("--orleans"));
    case "launch":
        {
            string which = rest.Length > 0 && !rest[0].StartsWith("--", StringComparison.Ordinal) ? rest[0] : "all";
            var timeout = TimeSpan.FromSeconds(Option(rest, "--timeout") ?? 300);
            return LaunchBench.Run(which, timeout, (int)(Option(rest, "--reps") ?? 2));
        }
    case "grains":
        {
            string which = rest.Length > 0 && !rest[0].StartsWith("--", StringComparison.Ordinal) ? rest[0] : "all";
            return GrainStateBench.Run(which, (int)(Option(rest, "--count") ?? 1024), Option(rest, "--ops"));
        }
    default:
        Console.Error.WriteLine("usage: DistEmu.Bench sim [--inproc] [BenchmarkDotNet args] | memory | quick [reps (default 3)] | engine [reps (default 3)]"
            + " | orleans [reps (default 3)] [--pings N] [--ops N] | quantum [reps (default 3)] [--ops N] | replay [--lines N (default 10M)] [--orleans] | tracing [reps (default 3)] | launch [large-1024|huge-4096|all] [--timeout s (default 300)] [--reps N (default 2)] | grains [large-1024|huge-4096|all] [--count N (default 1024)] [--ops N]");
        return 2;
}

// --name N: the positive integer after --name, or null.
static long? Option(string[] a, string name)
{
    int i = Array.IndexOf(a, name);
    return i >= 0 && i + 1 < a.Length && long.TryParse(a[i + 1], out long v) && v > 0 ? v : null;
}

// bench/ (the folder holding DistEmu.Bench/DistEmu.Bench.csproj), so BenchmarkDotNet's artifacts stay out of the repo root
// whatever the working directory; falls back to the working directory if the project is not found above the binary.
static string BenchDirectory()
{
    for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
    {
        if (File.Exists(Path.Combine(d.FullName, "DistEmu.Bench.csproj")))
            return d.Parent?.FullName ?? d.FullName;
    }
    return Directory.GetCurrentDirectory();
}
