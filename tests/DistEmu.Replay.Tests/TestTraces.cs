// Models the test inputs: locating the real sample (tests/data/threads4.perf.txt.gz) in the
// repository, decompressing it once, and running a PerfScriptReader over bytes to collect records,
// stats and the exception (if any).
using System.IO.Compression;
using System.Text;
using DistEmu.Replay;

namespace DistEmu.Replay.Tests;

internal sealed record ParseResult(List<PerfRecord> Records, PerfScriptStats Stats, Exception? Error)
{
    /// <summary>The records of an input that must parse to its end: the test fails with the parse error if there was one.</summary>
    public List<PerfRecord> Whole => Error is null ? Records : throw new Xunit.Sdk.XunitException($"the parse stopped early: {Error.GetType().Name}: {Error.Message}");
}

internal static class TestTraces
{
    private static readonly Lazy<byte[]> SampleGzBytes = new(() => File.ReadAllBytes(SampleGzPath));
    private static readonly Lazy<byte[]> SamplePlainBytes = new(() => Gunzip(SampleGzBytes.Value));
    private static readonly Lazy<string[]> SampleLinesLazy = new(() =>
        Encoding.UTF8.GetString(SamplePlainBytes.Value).Split('\n', StringSplitOptions.RemoveEmptyEntries));

    /// <summary>Path of tests/data/threads4.perf.txt.gz under the folder holding DistEmu.sln; fails if absent.</summary>
    public static string SampleGzPath => DataPath("threads4.perf.txt.gz");

    /// <summary>Path of tests/data/<paramref name="name"/> under the folder holding DistEmu.sln; fails if absent.</summary>
    public static string DataPath(string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "DistEmu.sln")))
        {
            dir = dir.Parent;
        }

        if (dir is null)
        {
            Assert.Fail($"No folder containing DistEmu.sln above {AppContext.BaseDirectory}; cannot locate the sample.");
        }

        string path = Path.GetFullPath(Path.Combine(dir.FullName, "tests", "data", name));
        if (!File.Exists(path))
        {
            Assert.Fail($"The test data file is missing: expected {path}.");
        }

        return path;
    }

    public static byte[] SampleGz => SampleGzBytes.Value;

    public static byte[] SamplePlain => SamplePlainBytes.Value;

    public static string[] SampleLines => SampleLinesLazy.Value;

    public static byte[] Gunzip(byte[] gz)
    {
        using var input = new GZipStream(new MemoryStream(gz), CompressionMode.Decompress);
        using var output = new MemoryStream();
        input.CopyTo(output);
        return output.ToArray();
    }

    public static byte[] Gzip(byte[] plain)
    {
        using var output = new MemoryStream();
        using (var gz = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
        {
            gz.Write(plain);
        }

        return output.ToArray();
    }

    public static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    public static ParseResult Parse(byte[] input, PerfParseMode mode, int maxLineLength = PerfScriptReaderOptions.DefaultMaxLineLength) =>
        Parse(new MemoryStream(input), mode, maxLineLength);

    public static ParseResult Parse(Stream input, PerfParseMode mode, int maxLineLength = PerfScriptReaderOptions.DefaultMaxLineLength)
    {
        var records = new List<PerfRecord>();
        using var reader = new PerfScriptReader(input, new PerfScriptReaderOptions { Mode = mode, MaxLineLength = maxLineLength });
        try
        {
            while (reader.TryRead(out var record))
            {
                records.Add(record);
            }
        }
        catch (Exception e)
        {
            return new ParseResult(records, reader.Stats, e);
        }

        return new ParseResult(records, reader.Stats, null);
    }

    public static ParseResult ParseStrict(string text) => Parse(Bytes(text), PerfParseMode.Strict);

    public static ParseResult ParseLenient(string text) => Parse(Bytes(text), PerfParseMode.Lenient);
}

/// <summary>A stream that hands out at most a few bytes per Read, to exercise buffer boundaries.</summary>
internal sealed class TrickleStream(byte[] data, int maxChunk) : Stream
{
    private int _pos;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        int n = Math.Min(Math.Min(count, maxChunk), data.Length - _pos);
        Array.Copy(data, _pos, buffer, offset, n);
        _pos += n;
        return n;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
