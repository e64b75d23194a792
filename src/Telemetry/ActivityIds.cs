using System.Diagnostics;
using System.Reflection;

namespace DistEmu.Telemetry;

/// <summary>
/// Gives an <see cref="Activity"/> a span id of our choosing. System.Diagnostics.Activity has no API for it (only the
/// trace id, through the parent context); its W3C ids live in two private string fields, which this sets right after
/// Start, before anything reads them, where this runtime has them (<see cref="Supported"/>).
/// </summary>
public static class ActivityIds
{
    private static readonly FieldInfo? SpanIdField = typeof(Activity).GetField("_spanId", BindingFlags.Instance | BindingFlags.NonPublic);
    private static readonly FieldInfo? IdField = typeof(Activity).GetField("_id", BindingFlags.Instance | BindingFlags.NonPublic);

    public static bool Supported => SpanIdField?.FieldType == typeof(string) && IdField?.FieldType == typeof(string);

    public static ActivityTraceId TraceIdOf(TraceId t) => ActivityTraceId.CreateFromString(t.ToString());
    public static ActivitySpanId SpanIdOf(ulong id) => ActivitySpanId.CreateFromString(id.ToString("x16"));

    /// <summary>Sets <paramref name="spanId"/> on a started activity; false (and no change) where the runtime does not allow it.</summary>
    public static bool TrySet(Activity a, ulong spanId)
    {
        if (!Supported) return false;
        string span = spanId.ToString("x16");
        SpanIdField!.SetValue(a, span);
        IdField!.SetValue(a, $"00-{a.TraceId.ToHexString()}-{span}-{(a.Recorded ? "01" : "00")}");
        return true;
    }
}
