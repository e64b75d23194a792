using BenchmarkDotNet.Running;
using DistEmu.Bench;

// dotnet run -c Release --project bench/DistEmu.Bench -- sim [--inproc] [BenchmarkDotNet args]
// dotnet run -c Release --project bench/DistEmu.Bench -- memory
// dotnet run -c Release --project bench/DistEmu.Bench -- quick [reps]
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
    default:
        Console.Error.WriteLine("usage: DistEmu.Bench sim [--inproc] [BenchmarkDotNet args] | memory | quick [reps (default 3)]");
        return 2;
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
