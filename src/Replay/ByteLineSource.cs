// Models the byte layer under the perf script parser: a plain or gzip stream (gzip detected by its
// magic bytes 1f 8b) cut into '\n'-terminated lines inside one reused buffer, so memory stays flat
// however long the trace is. Lines longer than the cap are discarded in a streaming way, and a
// corrupt or truncated gzip stream is reported once instead of throwing.
using System.Buffers.Binary;
using System.IO.Compression;

namespace DistEmu.Replay;

internal enum LineStatus
{
    /// <summary>A complete line (without its '\n') is in the out span.</summary>
    Line,

    /// <summary>A line over the cap was skipped; the out span holds its first bytes.</summary>
    TooLong,

    /// <summary>The gzip stream is corrupt or truncated; the out span holds the first bytes of the unfinished line.</summary>
    CorruptStream,

    /// <summary>No more input.</summary>
    EndOfInput,
}

internal sealed class ByteLineSource : IDisposable
{
    private const int MinBufferSize = 64 * 1024;
    private const int PrefixKeep = PerfTraceFormatException.MaxTextBytes + 1;

    private readonly Stream _raw;
    private readonly bool _leaveOpen;
    private readonly int _maxLineLength;
    private readonly byte[] _buffer;
    private readonly byte[] _prefix = new byte[PrefixKeep];
    private Stream? _input;
    private GzipTailStream? _gzipRaw;
    private long _decompressedBytes;
    private int _start;
    private int _end;
    private int _scanned;
    private bool _initialized;
    private bool _eof;
    private bool _corrupt;
    private bool _corruptReported;

    public ByteLineSource(Stream raw, bool leaveOpen, int maxLineLength)
    {
        _raw = raw;
        _leaveOpen = leaveOpen;
        _maxLineLength = maxLineLength;
        _buffer = new byte[Math.Max(MinBufferSize, maxLineLength + 2)];
    }

    public bool IsGzip { get; private set; }

    /// <summary>Why the gzip stream is corrupt, once <see cref="LineStatus.CorruptStream"/> was returned.</summary>
    public string? CorruptDetail { get; private set; }

    public Exception? CorruptException { get; private set; }

    public LineStatus ReadLine(out ReadOnlySpan<byte> line)
    {
        if (!_initialized)
        {
            Initialize();
        }

        while (true)
        {
            int nl = _buffer.AsSpan(_scanned, _end - _scanned).IndexOf((byte)'\n');
            if (nl >= 0)
            {
                nl += _scanned;
                int length = nl - _start;
                int lineStart = _start;
                _start = _scanned = nl + 1;
                if (length > _maxLineLength)
                {
                    line = KeepPrefix(_buffer.AsSpan(lineStart, length));
                    return LineStatus.TooLong;
                }

                line = _buffer.AsSpan(lineStart, length);
                return LineStatus.Line;
            }

            _scanned = _end;
            if (_end - _start > _maxLineLength)
            {
                line = SkipLongLine();
                return LineStatus.TooLong;
            }

            if (_eof)
            {
                if (_corrupt)
                {
                    if (_corruptReported)
                    {
                        line = default;
                        return LineStatus.EndOfInput;
                    }

                    _corruptReported = true;
                    line = KeepPrefix(_buffer.AsSpan(_start, _end - _start));
                    _start = _scanned = _end;
                    return LineStatus.CorruptStream;
                }

                if (_start < _end)
                {
                    // The last line has no '\n'.
                    line = _buffer.AsSpan(_start, _end - _start);
                    _start = _scanned = _end;
                    return LineStatus.Line;
                }

                line = default;
                return LineStatus.EndOfInput;
            }

            Fill();
        }
    }

    public void Dispose()
    {
        if (_input is not null && !ReferenceEquals(_input, _raw))
        {
            _input.Dispose(); // the GZipStream; it leaves _gzipRaw (and so _raw) open
        }

        if (!_leaveOpen)
        {
            _raw.Dispose();
        }
    }

    private void Initialize()
    {
        _initialized = true;
        int n = _raw.ReadAtLeast(_buffer.AsSpan(0, MinBufferSize), 2, throwOnEndOfStream: false);
        if (n >= 2 && _buffer[0] == 0x1f && _buffer[1] == 0x8b)
        {
            IsGzip = true;
            _gzipRaw = new GzipTailStream(_buffer.AsSpan(0, n).ToArray(), _raw);
            _input = new GZipStream(_gzipRaw, CompressionMode.Decompress, leaveOpen: true);
            _start = _end = _scanned = 0;
        }
        else
        {
            _input = _raw;
            _start = _scanned = 0;
            _end = n;
            if (n == 0)
            {
                _eof = true;
            }
        }
    }

    private ReadOnlySpan<byte> KeepPrefix(ReadOnlySpan<byte> text)
    {
        int n = Math.Min(text.Length, _prefix.Length);
        text[..n].CopyTo(_prefix);
        return _prefix.AsSpan(0, n);
    }

    /// <summary>Drops an over-long line up to and including its '\n' (or end of input), keeping its first bytes.</summary>
    private ReadOnlySpan<byte> SkipLongLine()
    {
        int kept = Math.Min(_end - _start, _prefix.Length);
        _buffer.AsSpan(_start, kept).CopyTo(_prefix);
        _start = _end = _scanned = 0;
        while (!_eof)
        {
            Fill();
            int nl = _buffer.AsSpan(0, _end).IndexOf((byte)'\n');
            if (nl >= 0)
            {
                _start = _scanned = nl + 1;
                break;
            }

            if (_corrupt)
            {
                // The long line ran into the corrupt tail: report it as long; the corruption is
                // reported next with an empty remainder.
                _start = _end = _scanned = 0;
                break;
            }

            _start = _end = _scanned = 0;
        }

        return _prefix.AsSpan(0, kept);
    }

    private void Fill()
    {
        if (_start > 0)
        {
            int pending = _end - _start;
            if (pending > 0)
            {
                _buffer.AsSpan(_start, pending).CopyTo(_buffer);
            }

            _scanned -= _start;
            _end = pending;
            _start = 0;
        }

        int n;
        try
        {
            n = _input!.Read(_buffer, _end, _buffer.Length - _end);
        }
        catch (InvalidDataException e) when (IsGzip)
        {
            MarkCorrupt(e.Message, e);
            return;
        }

        if (n <= 0)
        {
            _eof = true;
            if (IsGzip)
            {
                CheckGzipEnd();
            }

            return;
        }

        _end += n;
        if (IsGzip)
        {
            _decompressedBytes += n;
        }
    }

    private void MarkCorrupt(string detail, Exception? e)
    {
        _eof = true;
        _corrupt = true;
        CorruptDetail = detail;
        CorruptException = e;
    }

    /// <summary>
    /// .NET's GZipStream returns end-of-stream on a truncated file without complaint, so check that the
    /// raw input ended with a gzip trailer whose ISIZE matches the decompressed length (zlib has already
    /// checked the CRC when the trailer was complete). A file of several concatenated gzip members is
    /// accepted only if it also passes this check on its last member.
    /// </summary>
    private void CheckGzipEnd()
    {
        var tail = _gzipRaw!;
        if (tail.TotalBytes < 20)
        {
            MarkCorrupt("stream ends inside the gzip header", null);
            return;
        }

        uint isize = BinaryPrimitives.ReadUInt32LittleEndian(tail.LastFour);
        if (isize != unchecked((uint)_decompressedBytes))
        {
            MarkCorrupt($"truncated or trailing data: gzip trailer says {isize} bytes, got {_decompressedBytes}", null);
        }
    }

    /// <summary>Replays the peeked header bytes, then the rest of the raw stream, remembering the last 4 bytes read.</summary>
    private sealed class GzipTailStream(byte[] prefix, Stream inner) : Stream
    {
        private readonly byte[] _last = new byte[4];
        private int _prefixPos;

        public long TotalBytes { get; private set; }

        public ReadOnlySpan<byte> LastFour => _last;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int n;
            if (_prefixPos < prefix.Length)
            {
                n = Math.Min(buffer.Length, prefix.Length - _prefixPos);
                prefix.AsSpan(_prefixPos, n).CopyTo(buffer);
                _prefixPos += n;
            }
            else
            {
                n = inner.Read(buffer);
            }

            if (n > 0)
            {
                Remember(buffer[..n]);
            }

            return n;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        private void Remember(ReadOnlySpan<byte> data)
        {
            TotalBytes += data.Length;
            if (data.Length >= 4)
            {
                data[^4..].CopyTo(_last);
            }
            else
            {
                // Shift the old bytes left and append the new ones.
                int keep = 4 - data.Length;
                _last.AsSpan(data.Length, keep).CopyTo(_last);
                data.CopyTo(_last.AsSpan(keep));
            }
        }
    }
}
