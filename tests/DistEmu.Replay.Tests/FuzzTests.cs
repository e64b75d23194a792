// Models hostile input by seeded mutation of real sample lines (flips, inserted NUL/0xFF/separators,
// deletions, truncation, duplicated separators, and damage to gzip-compressed copies). Every outcome
// must be records or PerfTraceFormatException (strict), records plus skip counts (lenient), with the
// strict records always a prefix of the lenient ones; never another exception type, never a hang.
using System.Diagnostics;
using System.Text;
using DistEmu.Replay;

namespace DistEmu.Replay.Tests;

public sealed class FuzzTests
{
    private static readonly byte[] Interesting = [0x00, 0xFF, 0xFE, 0x80, 0xC3, (byte)'\n', (byte)'\r', (byte)'\t', (byte)' ', (byte)':', (byte)'/',
        (byte)'[', (byte)']', (byte)'(', (byte)')', (byte)'@', (byte)'.', (byte)'-', (byte)'x', (byte)'0', (byte)'f', (byte)'z', 0x1f, 0x8b];

    private static readonly byte[] Separators = [(byte)' ', (byte)':', (byte)'/', (byte)'[', (byte)']', (byte)'(', (byte)')', (byte)'@', (byte)'.'];

    private static byte[] Window(Random rng)
    {
        string[] lines = TestTraces.SampleLines;
        // Bias towards the start, where all the mmap variants are.
        int start = rng.Next(4) == 0 ? rng.Next(lines.Length) : rng.Next(120);
        int count = rng.Next(1, 25);
        var sb = new StringBuilder();
        for (int i = start; i < Math.Min(lines.Length, start + count); i++)
        {
            sb.Append(lines[i]).Append('\n');
        }

        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    private static List<byte> Mutate(byte[] input, Random rng)
    {
        var data = new List<byte>(input);
        int mutations = rng.Next(1, 6);
        for (int m = 0; m < mutations && data.Count > 0; m++)
        {
            int at = rng.Next(data.Count);
            switch (rng.Next(8))
            {
                case 0: // flip bits
                    data[at] ^= (byte)rng.Next(1, 256);
                    break;
                case 1: // insert an interesting byte
                    data.Insert(at, Interesting[rng.Next(Interesting.Length)]);
                    break;
                case 2: // insert a random byte
                    data.Insert(at, (byte)rng.Next(256));
                    break;
                case 3: // delete a run
                    data.RemoveRange(at, Math.Min(rng.Next(1, 8), data.Count - at));
                    break;
                case 4: // truncate
                    data.RemoveRange(at, data.Count - at);
                    break;
                case 5: // duplicate a separator
                    {
                        int sep = data.FindIndex(at, b => Array.IndexOf(Separators, b) >= 0);
                        if (sep >= 0)
                        {
                            data.Insert(sep, data[sep]);
                        }

                        break;
                    }

                case 6: // replace a byte with a digit or hex letter
                    data[at] = (byte)"0123456789abcdefg"[rng.Next(17)];
                    break;
                default: // inject NUL or 0xFF runs
                    data.InsertRange(at, Enumerable.Repeat(rng.Next(2) == 0 ? (byte)0 : (byte)0xFF, rng.Next(1, 4)));
                    break;
            }
        }

        return data;
    }

    /// <summary>Checks one input; returns the strict-mode failure reason, or null if strict mode read it all.</summary>
    private static PerfSkipReason? Check(byte[] input, int iteration, int maxLineLength)
    {
        var strict = TestTraces.Parse(input, PerfParseMode.Strict, maxLineLength);
        if (strict.Error is not null && strict.Error is not PerfTraceFormatException)
        {
            Assert.Fail($"iteration {iteration}: strict threw {strict.Error.GetType()}: {strict.Error}");
        }

        var lenient = TestTraces.Parse(input, PerfParseMode.Lenient, maxLineLength);
        if (lenient.Error is not null)
        {
            Assert.Fail($"iteration {iteration}: lenient threw {lenient.Error.GetType()}: {lenient.Error}");
        }

        var stats = lenient.Stats;
        Assert.Equal(stats.LinesRead, stats.Records + stats.Skipped);
        Assert.Equal(stats.Records, lenient.Records.Count);
        Assert.Equal(stats.Mmaps, lenient.Records.Count(r => r.IsMmap));
        // Bounded work: at most one line per byte (deflate expands at most ~1032x), plus a corrupt tail.
        Assert.True(stats.LinesRead <= (input.Length * 1100L) + 1, $"iteration {iteration}: {stats.LinesRead} lines from {input.Length} bytes");

        // Strict stops at the first error; until then it agrees with lenient.
        Assert.True(strict.Records.Count <= lenient.Records.Count, $"iteration {iteration}");
        Assert.Equal(strict.Records, lenient.Records.Take(strict.Records.Count));
        if (strict.Error is null)
        {
            Assert.Equal(lenient.Records, strict.Records);
            Assert.Equal(0, Enum.GetValues<PerfSkipReason>().Where(r => r.IsError()).Sum(stats.SkippedFor));
        }
        else if (strict.Error is PerfTraceFormatException e && e.Reason != PerfSkipReason.NoRecords)
        {
            Assert.True(stats.SkippedFor(e.Reason) > 0, $"iteration {iteration}: strict said {e.Reason}, lenient counted {stats}");
            Assert.InRange(e.LineNumber, 1, stats.LinesRead);
        }

        return (strict.Error as PerfTraceFormatException)?.Reason;
    }

    private static void AssertVariety(Dictionary<string, int> outcomes, int minReasons)
    {
        // The mutations must actually reach many parser paths, and some inputs must survive.
        Assert.True(outcomes.ContainsKey("ok"), string.Join(", ", outcomes));
        Assert.True(outcomes.Count - 1 >= minReasons, string.Join(", ", outcomes));
    }

    private static void Tally(Dictionary<string, int> outcomes, PerfSkipReason? reason)
    {
        string key = reason?.Name() ?? "ok";
        outcomes[key] = outcomes.GetValueOrDefault(key) + 1;
    }

    [Fact]
    public void Mutated_plain_lines()
    {
        var rng = new Random(20240611);
        var outcomes = new Dictionary<string, int>();
        for (int i = 0; i < 4000; i++)
        {
            byte[] input = [.. Mutate(Window(rng), rng)];
            Tally(outcomes, Check(input, i, rng.Next(5) == 0 ? 64 : PerfScriptReaderOptions.DefaultMaxLineLength));
        }

        AssertVariety(outcomes, 9);
    }

    [Fact]
    public void Mutated_gzip_streams()
    {
        var rng = new Random(777);
        var outcomes = new Dictionary<string, int>();
        for (int i = 0; i < 1500; i++)
        {
            byte[] gz = TestTraces.Gzip(Window(rng));
            List<byte> mutated = rng.Next(3) == 0 ? [.. gz[..rng.Next(gz.Length)]] : Mutate(gz, rng);
            if (mutated.Count >= 2)
            {
                // Keep the magic most of the time, so the gzip path is what gets exercised.
                mutated[0] = 0x1f;
                mutated[1] = 0x8b;
            }

            Tally(outcomes, Check([.. mutated], i, PerfScriptReaderOptions.DefaultMaxLineLength));
        }

        AssertVariety(outcomes, 2);
        Assert.True(outcomes.GetValueOrDefault("corrupt-stream") > 100, string.Join(", ", outcomes));
    }

    [Fact]
    public void Every_mutation_that_damages_a_line_is_reported()
    {
        // A single bad byte in a fault address must not slip through as a record in strict mode.
        var rng = new Random(99);
        string line = "16335   529.634191: page-faults:     55b75d56f04c";
        for (int i = 0; i < 500; i++)
        {
            var bytes = Encoding.ASCII.GetBytes(line);
            int at = rng.Next("16335   529.634191: page-faults:     ".Length, bytes.Length);
            bytes[at] = (byte)"ghijklmnopqrstuvwxyz!\"#$%&'*+,;<=>?"[rng.Next(35)];
            var strict = TestTraces.Parse(bytes, PerfParseMode.Strict);
            var e = Assert.IsType<PerfTraceFormatException>(strict.Error);
            Assert.Equal("address", e.Field);
        }
    }
}
