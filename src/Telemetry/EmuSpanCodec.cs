namespace DistEmu.Telemetry;

/// <summary>
/// Whole traces in a compact binary form, for the writers that must hold a run's spans on disk before writing them
/// (<see cref="TraceWindows"/>). Reading interns names and keys, so the writers' per-string caches still hit.
/// </summary>
internal sealed class EmuSpanCodec
{
    private readonly Dictionary<string, string> _strings = new(StringComparer.Ordinal);

    public static void Write(BinaryWriter w, IReadOnlyList<EmuSpan> trace)
    {
        w.Write(trace.Count);
        foreach (var s in trace)
        {
            w.Write(s.Trace.Hi);
            w.Write(s.Trace.Lo);
            w.Write(s.SpanId);
            w.Write(s.ParentId);
            w.Write(s.Name);
            w.Write(s.StartNs);
            w.Write(s.EndNs);
            w.Write(s.EmulatedDurationNs);
            w.Write(s.Process);
            w.Write(s.Node);
            var tags = s.Attributes;
            w.Write(tags.Length);
            foreach (ref readonly var t in tags)
            {
                w.Write(t.Key);
                w.Write((byte)t.Kind);
                w.Write(t.Number);
                w.Write(t.Text ?? "");
            }
            w.Write(s.Links.Count);
            foreach (var l in s.Links)
            {
                w.Write((byte)l.Type);
                w.Write(l.Trace.Hi);
                w.Write(l.Trace.Lo);
                w.Write(l.SpanId);
            }
        }
    }

    /// <summary>One trace, appended to <paramref name="into"/> as new span objects.</summary>
    public void Read(BinaryReader r, List<EmuSpan> into)
    {
        int count = r.ReadInt32();
        for (int i = 0; i < count; i++)
        {
            var s = new EmuSpan
            {
                Trace = new TraceId(r.ReadUInt64(), r.ReadUInt64()),
                SpanId = r.ReadUInt64(),
                ParentId = r.ReadUInt64(),
                Name = Intern(r.ReadString()),
                StartNs = r.ReadInt64(),
                EndNs = r.ReadInt64(),
                EmulatedDurationNs = r.ReadInt64(),
                Process = Intern(r.ReadString()),
                Node = r.ReadInt32(),
            };
            int tags = r.ReadInt32();
            for (int k = 0; k < tags; k++)
            {
                string key = Intern(r.ReadString());
                var kind = (SpanTagKind)r.ReadByte();
                long number = r.ReadInt64();
                string text = r.ReadString();
                s.Tag(new SpanTag(key, kind, number, kind == SpanTagKind.String ? Intern(text) : null));
            }
            int links = r.ReadInt32();
            for (int k = 0; k < links; k++)
                s.Links.Add(new SpanRef((SpanRefType)r.ReadByte(), new TraceId(r.ReadUInt64(), r.ReadUInt64()), r.ReadUInt64()));
            into.Add(s);
        }
    }

    /// <summary>Names, keys and short values repeat; long texts (a violation report) are kept as they are.</summary>
    private string Intern(string s)
    {
        if (s.Length > 64) return s;
        if (_strings.TryGetValue(s, out var known)) return known;
        if (_strings.Count < Utf8Out.MaxCached) _strings[s] = s;
        return s;
    }
}
