namespace DistEmu.Telemetry;

/// <summary>A trace file sink that can say, once complete, which files it wrote (a split Jaeger trace is several).</summary>
public interface ITraceFile : ITraceSink
{
    IReadOnlyList<string> Files { get; }
}

/// <summary>
/// The trace file a path asks for: Perfetto / Chrome trace events (*.perfetto.json), Jaeger JSON (*.json) or OTLP JSON
/// lines (*.jsonl, *.otlp.jsonl).
/// </summary>
public static class TraceFiles
{
    public const string PerfettoSuffix = ".perfetto.json";

    public static ITraceFile Open(string path, DateTimeOffset epoch, TraceFileOptions? options = null)
    {
        options ??= new TraceFileOptions();
        if (path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase))
            return new OtlpJsonLinesFile(path, epoch);
        if (path.EndsWith(PerfettoSuffix, StringComparison.OrdinalIgnoreCase))
            return new PerfettoJsonFile(path, options);
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            return options.WindowNs is null ? new JaegerJsonFile(path, epoch, options) : new TraceWindows(new JaegerJsonFile(path, epoch, options), options.WindowNs.Value);
        throw new ArgumentException($"--trace-file {path}: expected a .json (Jaeger), .perfetto.json (Perfetto) or .jsonl / .otlp.jsonl (OTLP JSON lines) file name");
    }
}
