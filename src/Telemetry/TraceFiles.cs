namespace DistEmu.Telemetry;

/// <summary>The trace file a path asks for: Jaeger JSON (*.json) or OTLP JSON lines (*.jsonl, *.otlp.jsonl).</summary>
public static class TraceFiles
{
    public static ITraceSink Open(string path, DateTimeOffset epoch)
    {
        if (path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase))
            return new OtlpJsonLinesFile(path, epoch);
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            return new JaegerJsonFile(path, epoch);
        throw new ArgumentException($"--trace-file {path}: expected a .json (Jaeger) or .jsonl / .otlp.jsonl (OTLP JSON lines) file name");
    }
}
