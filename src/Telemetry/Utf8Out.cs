using System.Globalization;
using System.Text.Json;

namespace DistEmu.Telemetry;

/// <summary>
/// Appends UTF-8 to a buffer of its own and hands full buffers to a <see cref="BackgroundFileWriter"/>: constant JSON
/// fragments (UTF-8 literals, or strings encoded once), numbers and hex ids formatted in place. A trace file is mostly
/// the same fragments over and over, so this costs a bounds check and a copy per fragment instead of a JSON writer's
/// per-token work. Callers emit well-formed JSON themselves; text from outside goes through <see cref="String"/>,
/// which escapes as <see cref="Utf8JsonWriter"/> does.
/// </summary>
internal sealed class Utf8Out(BackgroundFileWriter output)
{
    /// <summary>Distinct string objects whose encoding is kept (names, keys, cached values); others are encoded per use.</summary>
    public const int MaxCached = 4096;

    private readonly Dictionary<string, byte[]> _encoded = new(ReferenceEqualityComparer.Instance);
    private byte[] _buf = new byte[output.ChunkSize];
    private int _pos;

    /// <summary>Room for <paramref name="n"/> more bytes: a full buffer goes to the writer thread.</summary>
    private Span<byte> Room(int n)
    {
        if (_buf.Length - _pos < n)
        {
            _buf = output.Exchange(_buf, _pos);
            _pos = 0;
            if (_buf.Length < n) _buf = new byte[n];
        }
        return _buf.AsSpan(_pos);
    }

    public void Raw(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(Room(bytes.Length));
        _pos += bytes.Length;
    }

    public void Byte(byte b)
    {
        Room(1)[0] = b;
        _pos++;
    }

    public void Number(long n)
    {
        n.TryFormat(Room(20), out int written, default, CultureInfo.InvariantCulture);
        _pos += written;
    }

    public void Hex16(ulong id)
    {
        WriteHex(Room(16), id);
        _pos += 16;
    }

    public void Hex32(TraceId id)
    {
        var span = Room(32);
        WriteHex(span, id.Hi);
        WriteHex(span[16..], id.Lo);
        _pos += 32;
    }

    /// <summary>16 lower-case hex digits (a loop over a table: no format string to parse per id).</summary>
    private static void WriteHex(Span<byte> to, ulong v)
    {
        ReadOnlySpan<byte> digits = "0123456789abcdef"u8;
        for (int i = 15; i >= 0; i--)
        {
            to[i] = digits[(int)(v & 0xF)];
            v >>= 4;
        }
    }

    /// <summary>"0x" and the hex digits of <paramref name="n"/>.</summary>
    public void HexText(long n)
    {
        var span = Room(18);
        span[0] = (byte)'0';
        span[1] = (byte)'x';
        n.TryFormat(span[2..], out int written, "x", CultureInfo.InvariantCulture);
        _pos += written + 2;
    }

    /// <summary>The JSON-escaped UTF-8 of <paramref name="s"/>, without quotes (made once per string object, up to a bound).</summary>
    public void String(string s)
    {
        if (!_encoded.TryGetValue(s, out var bytes))
        {
            bytes = JsonEncodedText.Encode(s).EncodedUtf8Bytes.ToArray();
            if (_encoded.Count < MaxCached) _encoded[s] = bytes;
        }
        Raw(bytes);
    }

    /// <summary>Hands what is buffered to the writer thread.</summary>
    public void Flush()
    {
        _buf = output.Exchange(_buf, _pos);
        _pos = 0;
    }
}
