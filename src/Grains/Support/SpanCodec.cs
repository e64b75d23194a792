using DistEmu.Abstractions;
using DistEmu.Telemetry;

namespace DistEmu.Grains.Support;

/// <summary>EmuSpan to message and back.</summary>
public static class SpanCodec
{
    public static SpanMessage ToMessage(EmuSpan s)
    {
        var tags = s.Attributes;
        var m = new SpanMessage
        {
            TraceHi = s.Trace.Hi,
            TraceLo = s.Trace.Lo,
            SpanId = s.SpanId,
            ParentId = s.ParentId,
            Name = s.Name,
            StartNs = s.StartNs,
            EndNs = s.EndNs,
            Process = s.Process,
            Node = s.Node,
            EmulatedDurationNs = s.EmulatedDurationNs,
            ExportedLive = s.ExportedLive,
            TagKeys = new string[tags.Length],
            TagKinds = new byte[tags.Length],
            TagNumbers = new long[tags.Length],
            TagTexts = new string?[tags.Length],
            LinkTypes = new byte[s.Links.Count],
            LinkTraceHi = new ulong[s.Links.Count],
            LinkTraceLo = new ulong[s.Links.Count],
            LinkSpanIds = new ulong[s.Links.Count],
        };
        for (int i = 0; i < tags.Length; i++)
        {
            m.TagKeys[i] = tags[i].Key;
            m.TagKinds[i] = (byte)tags[i].Kind;
            m.TagNumbers[i] = tags[i].Number;
            m.TagTexts[i] = tags[i].Text;
        }
        for (int i = 0; i < s.Links.Count; i++)
        {
            var l = s.Links[i];
            (m.LinkTypes[i], m.LinkTraceHi[i], m.LinkTraceLo[i], m.LinkSpanIds[i]) = ((byte)l.Type, l.Trace.Hi, l.Trace.Lo, l.SpanId);
        }
        return m;
    }

    public static EmuSpan FromMessage(SpanMessage m)
    {
        var s = new EmuSpan
        {
            Trace = new TraceId(m.TraceHi, m.TraceLo),
            SpanId = m.SpanId,
            ParentId = m.ParentId,
            Name = m.Name,
            StartNs = m.StartNs,
            EndNs = m.EndNs,
            Process = m.Process,
            Node = m.Node,
            EmulatedDurationNs = m.EmulatedDurationNs,
            ExportedLive = m.ExportedLive,
        };
        for (int i = 0; i < m.TagKeys.Length; i++)
            s.Tag(new SpanTag(m.TagKeys[i], (SpanTagKind)m.TagKinds[i], m.TagNumbers[i], m.TagTexts[i]));
        for (int i = 0; i < m.LinkTypes.Length; i++)
            s.Links.Add(new SpanRef((SpanRefType)m.LinkTypes[i], new TraceId(m.LinkTraceHi[i], m.LinkTraceLo[i]), m.LinkSpanIds[i]));
        return s;
    }
}
