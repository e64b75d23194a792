using DistEmu.Abstractions;

namespace DistEmu.Silo;

/// <summary>
/// The collector's spans on disk while the run goes: a temporary folder of bucket files, a span in the bucket of its
/// trace id's hash, appended in a compact binary form. A trace's fragments arrive from different grains at different
/// times, but all land in one bucket, so the end of the run joins them one bucket at a time: memory holds one bucket,
/// about 1/<see cref="Buckets"/> of the run's spans, and the write buffers. The folder goes with <see cref="Dispose"/>.
/// </summary>
public sealed class SpanSpill : IDisposable
{
    public const int DefaultBuckets = 64;
    private const int BufferBytes = 64 * 1024;

    private readonly BinaryWriter?[] _writers;

    public SpanSpill(string? root = null, int buckets = DefaultBuckets)
    {
        Folder = Path.Combine(root ?? Path.GetTempPath(), $"distemu-spans-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Folder);
        _writers = new BinaryWriter?[buckets];
    }

    public string Folder { get; }
    public int Buckets => _writers.Length;
    /// <summary>Spans appended so far.</summary>
    public long Count { get; private set; }

    public static int BucketOf(ulong traceHi, ulong traceLo, int buckets)
    {
        // SplitMix64's finaliser: the recorders' ids are well mixed already, ids in tests need not be.
        ulong z = traceHi ^ (traceLo * 0x9E3779B97F4A7C15UL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return (int)((z ^ (z >> 31)) % (ulong)buckets);
    }

    private string PathOf(int bucket) => Path.Combine(Folder, $"{bucket}.spans");

    public void Append(SpanMessage m)
    {
        int b = BucketOf(m.TraceHi, m.TraceLo, _writers.Length);
        var w = _writers[b] ??= new BinaryWriter(new FileStream(PathOf(b), FileMode.Append, FileAccess.Write, FileShare.None, BufferBytes));
        w.Write(m.TraceHi);
        w.Write(m.TraceLo);
        w.Write(m.SpanId);
        w.Write(m.ParentId);
        w.Write(m.Name);
        w.Write(m.StartNs);
        w.Write(m.EndNs);
        w.Write(m.Process);
        w.Write(m.Node);
        w.Write(m.EmulatedDurationNs);
        w.Write(m.ExportedLive);
        w.Write(m.TagKeys.Length);
        for (int i = 0; i < m.TagKeys.Length; i++)
        {
            w.Write(m.TagKeys[i]);
            w.Write(m.TagKinds[i]);
            w.Write(m.TagNumbers[i]);
            w.Write(m.TagTexts[i] is not null);
            if (m.TagTexts[i] is { } text) w.Write(text);
        }
        w.Write(m.LinkTypes.Length);
        for (int i = 0; i < m.LinkTypes.Length; i++)
        {
            w.Write(m.LinkTypes[i]);
            w.Write(m.LinkTraceHi[i]);
            w.Write(m.LinkTraceLo[i]);
            w.Write(m.LinkSpanIds[i]);
        }
        Count++;
    }

    /// <summary>The spans of one bucket, in the order they came; the bucket's file is closed first and deleted after.</summary>
    public IEnumerable<SpanMessage> Read(int bucket)
    {
        _writers[bucket]?.Dispose();
        _writers[bucket] = null;
        string path = PathOf(bucket);
        if (!File.Exists(path)) yield break;
        using (var r = new BinaryReader(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.None, BufferBytes)))
        {
            while (r.BaseStream.Position < r.BaseStream.Length)
                yield return ReadOne(r);
        }
        File.Delete(path);
    }

    private static SpanMessage ReadOne(BinaryReader r)
    {
        var m = new SpanMessage
        {
            TraceHi = r.ReadUInt64(),
            TraceLo = r.ReadUInt64(),
            SpanId = r.ReadUInt64(),
            ParentId = r.ReadUInt64(),
            Name = r.ReadString(),
            StartNs = r.ReadInt64(),
            EndNs = r.ReadInt64(),
            Process = r.ReadString(),
            Node = r.ReadInt32(),
            EmulatedDurationNs = r.ReadInt64(),
            ExportedLive = r.ReadBoolean(),
        };
        int tags = r.ReadInt32();
        (m.TagKeys, m.TagKinds, m.TagNumbers, m.TagTexts) = (new string[tags], new byte[tags], new long[tags], new string?[tags]);
        for (int i = 0; i < tags; i++)
        {
            m.TagKeys[i] = r.ReadString();
            m.TagKinds[i] = r.ReadByte();
            m.TagNumbers[i] = r.ReadInt64();
            m.TagTexts[i] = r.ReadBoolean() ? r.ReadString() : null;
        }
        int links = r.ReadInt32();
        (m.LinkTypes, m.LinkTraceHi, m.LinkTraceLo, m.LinkSpanIds) = (new byte[links], new ulong[links], new ulong[links], new ulong[links]);
        for (int i = 0; i < links; i++)
        {
            m.LinkTypes[i] = r.ReadByte();
            m.LinkTraceHi[i] = r.ReadUInt64();
            m.LinkTraceLo[i] = r.ReadUInt64();
            m.LinkSpanIds[i] = r.ReadUInt64();
        }
        return m;
    }

    public void Dispose()
    {
        for (int i = 0; i < _writers.Length; i++)
        {
            _writers[i]?.Dispose();
            _writers[i] = null;
        }
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}
