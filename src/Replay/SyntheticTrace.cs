// Models a recorded perf script page-fault trace synthetically: a deterministic (seeded) N-line text
// in exactly the format of `perf script --show-mmap-events -F tid,time,addr,event`, with a kernel
// text mapping first, a process's startup mappings (stack, binary, libc, vdso/vvar, heap), then
// several threads that keep mapping anonymous regions and faulting inside the mappings, plus a few
// kernel-address faults. Used by tests and benchmarks of the replay reader.
using System.Globalization;

namespace DistEmu.Replay;

/// <summary>What <see cref="SyntheticTrace.Write"/> produced.</summary>
/// <param name="Lines">Lines written (always the requested count).</param>
/// <param name="Mmaps">User mmap lines.</param>
/// <param name="PageFaults">User page-fault lines.</param>
/// <param name="KernelLines">Lines a reader must skip as kernel (the kernel text mapping and kernel-address faults).</param>
/// <param name="Tids">Distinct TIDs of the user lines, ascending.</param>
public sealed record SyntheticTraceSummary(long Lines, long Mmaps, long PageFaults, long KernelLines, IReadOnlyList<int> Tids);

public static class SyntheticTrace
{
    private const string KernelLine =
        "    0     0.000000: PERF_RECORD_MMAP -1/0: [0xffffffff81000000(0x120bb08) @ 0xffffffff81000000]: x [kernel.kallsyms]_text";

    private const int MaxRegions = 64;
    private const ulong PageSize = 4096;

    /// <summary>
    /// Writes exactly <paramref name="lineCount"/> lines ('\n'-terminated) to <paramref name="writer"/>.
    /// The same (lineCount, seed, threads) always gives the same text.
    /// </summary>
    /// <param name="writer">Destination.</param>
    /// <param name="lineCount">Number of lines, at least 0.</param>
    /// <param name="seed">Seed of the deterministic generator.</param>
    /// <param name="threads">Worker threads besides the main thread (1..64).</param>
    public static SyntheticTraceSummary Write(TextWriter writer, long lineCount, int seed, int threads = 4)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentOutOfRangeException.ThrowIfNegative(lineCount);
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(threads, 64);

        var g = new Generator(writer, seed, threads);
        g.Run(lineCount);
        var tids = g.UsedTids.ToList();
        tids.Sort();
        return new SyntheticTraceSummary(g.Lines, g.Mmaps, g.PageFaults, g.KernelLines, tids);
    }

    /// <summary>Convenience: the whole trace as a string (for small line counts).</summary>
    public static string ToText(long lineCount, int seed, int threads = 4)
    {
        using var sw = new StringWriter(CultureInfo.InvariantCulture);
        Write(sw, lineCount, seed, threads);
        return sw.ToString();
    }

    private readonly record struct Region(ulong Start, ulong Length);

    private sealed class Generator(TextWriter writer, int seed, int threads)
    {
        private readonly char[] _buf = new char[512];
        private readonly List<Region> _regions = [];
        private ulong _state = ((ulong)(uint)seed * 0x9E3779B97F4A7C15UL) ^ 0xD1B54A32D192ED03UL;
        private long _limit;
        private long _timeUs;
        private int _pid;
        private ulong _nextAnon = 0x7f29_d970_0000;

        public long Lines { get; private set; }

        public long Mmaps { get; private set; }

        public long PageFaults { get; private set; }

        public long KernelLines { get; private set; }

        public HashSet<int> UsedTids { get; } = [];

        public void Run(long lineCount)
        {
            _limit = lineCount;
            _pid = 1000 + (int)(Next() % 60000);
            _timeUs = (500L * 1_000_000) + (long)(Next() % 1_000_000);
            if (!Room())
            {
                return;
            }

            writer.Write(KernelLine);
            writer.Write('\n');
            Lines++;
            KernelLines++;

            // Startup mappings of the main thread, like the sample.
            ulong exe = 0x55b7_5d56_b000 + ((Next() % 0x1000) << 12);
            ulong stack = 0x7fff_c0e3_1000 + ((Next() % 0x100) << 12);
            Map(_pid, stack, 0x21000, 0x7fff_fffd_e000, "rw-p", "[stack]", "00:00 0 0");
            Map(_pid, exe, 0x1000, 0, "r--p", "/tmp/traces/synthetic", "fe:00 11657945 496746445");
            Map(_pid, exe + 0x1000, 0x1000, 0x1000, "r-xp", "/tmp/traces/synthetic", "fe:00 11657945 496746445");
            Map(_pid, exe + 0x2000, 0x2000, 0x2000, "rw-p", "/tmp/traces/synthetic", "fe:00 11657945 496746445");
            Map(_pid, 0x7f29_d972_7000, 0x1e2000, 0, "r--p", "/usr/lib/x86_64-linux-gnu/libc.so.6", "fe:00 332096 0");
            Map(_pid, 0x7f29_d974_d000, 0x156000, 0x26000, "r-xp", "/usr/lib/x86_64-linux-gnu/libc.so.6", "fe:00 332096 0");
            Map(_pid, 0x7f29_d991_b000, 0x2000, 0, "r-xp", "[vdso]", "00:00 0 0");
            Map(_pid, 0x7f29_d991_5000, 0x4000, 0, "r--p", "[vvar]", "00:00 0 0");
            Map(_pid, 0x7f29_d991_9000, 0x2000, 0, "r--p", "[vvar_vclock]", "00:00 0 0");
            Map(_pid, exe + 0x100_0000, 0x21000, 0, "rw-p", "[heap]", "00:00 0 0");

            while (Room())
            {
                int tid = _pid + (int)(Next() % (ulong)(threads + 1));
                ulong roll = Next() % 4096;
                if (roll < 12)
                {
                    ulong length = ((Next() % 4096) + 1) * PageSize;
                    ulong start = _nextAnon - length;
                    _nextAnon = start - (PageSize * 16);
                    string prot = roll == 0 ? "---p" : roll == 1 ? "r--p" : "rw-p";
                    Map(tid, start, length, start, prot, "//anon", "00:00 0 0");
                }
                else if (roll < 14)
                {
                    Fault(tid, 0xffff_ffff_8100_0000 + (Next() % 0x100_0000), kernel: true);
                }
                else
                {
                    var r = _regions[(int)(Next() % (ulong)_regions.Count)];
                    Fault(tid, r.Start + (Next() % r.Length), kernel: false);
                }
            }
        }

        private bool Room() => Lines < _limit;

        private void Map(int tid, ulong start, ulong length, ulong offset, string prot, string name, string device)
        {
            if (!Room())
            {
                return;
            }

            Span<char> b = _buf;
            int n = Prefix(b, tid);
            n += Append(b[n..], " PERF_RECORD_MMAP2 ");
            n += Format(b[n..], _pid, default);
            b[n++] = '/';
            n += Format(b[n..], tid, default);
            n += Append(b[n..], ": [0x");
            n += Format(b[n..], start, "x");
            n += Append(b[n..], "(0x");
            n += Format(b[n..], length, "x");
            n += Append(b[n..], ") @ ");
            if (offset != 0)
            {
                n += Append(b[n..], "0x");
            }

            n += Format(b[n..], offset, "x");
            b[n++] = ' ';
            n += Append(b[n..], device);
            n += Append(b[n..], "]: ");
            n += Append(b[n..], prot);
            b[n++] = ' ';
            n += Append(b[n..], name);
            b[n++] = '\n';
            writer.Write(b[..n]);
            Lines++;
            Mmaps++;
            UsedTids.Add(tid);
            if (name == "//anon" || name == "[heap]" || name == "[stack]" || prot[1] == 'w')
            {
                if (_regions.Count < MaxRegions)
                {
                    _regions.Add(new Region(start, length));
                }
                else
                {
                    _regions[(int)(Next() % MaxRegions)] = new Region(start, length);
                }
            }
        }

        private void Fault(int tid, ulong address, bool kernel)
        {
            Span<char> b = _buf;
            int n = Prefix(b, tid);
            n += Append(b[n..], " page-faults: ");
            n += FormatPadded(b[n..], address, 16, "x");
            b[n++] = '\n';
            writer.Write(b[..n]);
            Lines++;
            if (kernel)
            {
                KernelLines++;
            }
            else
            {
                PageFaults++;
                UsedTids.Add(tid);
            }
        }

        /// <summary>"%5d %5lu.%06lu:" with the clock advanced by 1..20 µs.</summary>
        private int Prefix(Span<char> b, int tid)
        {
            _timeUs += 1 + (long)(Next() % 20);
            int n = FormatPadded(b, tid, 5, default);
            b[n++] = ' ';
            n += FormatPadded(b[n..], _timeUs / 1_000_000, 5, default);
            b[n++] = '.';
            n += Format(b[n..], _timeUs % 1_000_000, "D6");
            b[n++] = ':';
            return n;
        }

        private static int Append(Span<char> b, string s)
        {
            s.AsSpan().CopyTo(b);
            return s.Length;
        }

        private static int Format<T>(Span<char> b, T value, ReadOnlySpan<char> format)
            where T : ISpanFormattable
        {
            value.TryFormat(b, out int n, format, CultureInfo.InvariantCulture);
            return n;
        }

        private static int FormatPadded<T>(Span<char> b, T value, int width, ReadOnlySpan<char> format)
            where T : ISpanFormattable
        {
            Span<char> tmp = stackalloc char[24];
            value.TryFormat(tmp, out int len, format, CultureInfo.InvariantCulture);
            int pad = Math.Max(0, width - len);
            b[..pad].Fill(' ');
            tmp[..len].CopyTo(b[pad..]);
            return pad + len;
        }

        /// <summary>SplitMix64: tiny, fast and identical on every runtime.</summary>
        private ulong Next()
        {
            ulong z = _state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }
}
