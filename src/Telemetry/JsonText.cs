using System.Globalization;
using System.Text.Json;

namespace DistEmu.Telemetry;

/// <summary>
/// A trace writer's encoded strings: span names, attribute keys and process names come from a small set of string
/// objects (literals, the recorder's cached names), so each is JSON-encoded once, found again by reference.
/// Bounded: past <see cref="MaxEntries"/> distinct strings, further ones are encoded on each use.
/// </summary>
internal sealed class JsonText
{
    public const int MaxEntries = 4096;
    private readonly Dictionary<string, JsonEncodedText> _encoded = new(ReferenceEqualityComparer.Instance);

    public JsonEncodedText Encoded(string s)
    {
        if (_encoded.TryGetValue(s, out var e)) return e;
        e = JsonEncodedText.Encode(s);
        if (_encoded.Count < MaxEntries) _encoded[s] = e;
        return e;
    }

    /// <summary>16 lower-case hex digits of a span id into the start of <paramref name="buffer"/>.</summary>
    public static ReadOnlySpan<byte> Hex16(ulong id, Span<byte> buffer)
    {
        id.TryFormat(buffer[..16], out _, "x16", CultureInfo.InvariantCulture);
        return buffer[..16];
    }
}
