// The annotation page speaks the benchmark's language: experts judge German answers with German
// instructions, so nothing in the interface nudges them towards English norms.

export type UiLang = 'EN' | 'DE' | 'FR' | 'IT' | 'ES';

export interface UiStrings {
  title: string;
  /** Paragraphs shown before the annotator starts (and behind the "Instructions" toggle later). */
  instructions: string[];
  namePrompt: string;
  nameNote: string;
  start: string;
  question: string;
  turn: string;
  firstTurn: string;
  assistantA: string;
  assistantB: string;
  reference: string;
  aBetter: string;
  bBetter: string;
  tie: string;
  bothBad: string;
  skip: string;
  voted: string;
  done: string;
  offline: string;
  signedInAs: string;
  switchAnnotator: string;
  showInstructions: string;
}

export const UI_STRINGS: Record<UiLang, UiStrings> = {
  EN: {
    title: 'MT-Bench-X: human evaluation',
    instructions: [
      'You will see a question and the answers of two AI assistants, A and B. Judge which answer is better: consider helpfulness, relevance, accuracy, depth, creativity and level of detail, and whether it is written in the language of the question.',
      'Each question has two turns. First you judge the answers to the first question; then the follow-up question, with each assistant\'s whole conversation shown. Judge only the marked turn. Which assistant appears on the left is decided at random for every turn, so do not let the position influence you.',
      'Where a reference solution is shown (mathematics, reasoning, coding), use it to check correctness.',
      'Choose "A is better" or "B is better"; "Tie" if both are equally good; "Both bad" if neither answer is acceptable; "Skip" if you cannot judge this question. Every vote is saved at once; you can stop at any time and continue later under the same name.',
    ],
    namePrompt: 'Your name',
    nameNote: 'Your name is not stored: votes carry a pseudonym derived from it, so use the same name to continue later.',
    start: 'Start',
    question: 'Question',
    turn: 'Turn',
    firstTurn: 'First turn (context)',
    assistantA: 'Assistant A',
    assistantB: 'Assistant B',
    reference: 'Reference solution',
    aBetter: 'A is better',
    bBetter: 'B is better',
    tie: 'Tie',
    bothBad: 'Both bad',
    skip: 'Skip',
    voted: 'votes so far',
    done: 'Thank you: there is nothing left for you to judge.',
    offline: 'The server cannot be reached; your vote will be sent as soon as it is back.',
    signedInAs: 'Annotator',
    switchAnnotator: 'Change annotator',
    showInstructions: 'Instructions',
  },
  DE: {
    title: 'MT-Bench-X: menschliche Bewertung',
    instructions: [
      'Sie sehen eine Frage und die Antworten zweier KI-Assistenten, A und B. Beurteilen Sie, welche Antwort besser ist: Berücksichtigen Sie Hilfsbereitschaft, Relevanz, Genauigkeit, Tiefe, Kreativität und Detaillierungsgrad sowie, ob die Antwort in der Sprache der Frage verfasst ist.',
      'Jede Frage hat zwei Runden. Zuerst bewerten Sie die Antworten auf die erste Frage, danach die Folgefrage, wobei der gesamte Gesprächsverlauf jedes Assistenten angezeigt wird. Bewerten Sie nur die markierte Runde. Welcher Assistent links erscheint, wird für jede Runde neu ausgelost; lassen Sie sich von der Position nicht beeinflussen.',
      'Wenn eine Referenzlösung angezeigt wird (Mathematik, logisches Denken, Programmierung), prüfen Sie damit die Korrektheit.',
      'Wählen Sie „A ist besser“ oder „B ist besser“, „Unentschieden“, wenn beide gleich gut sind, „Beide schlecht“, wenn keine Antwort akzeptabel ist, und „Überspringen“, wenn Sie diese Frage nicht beurteilen können. Jede Stimme wird sofort gespeichert; Sie können jederzeit aufhören und später unter demselben Namen weitermachen.',
    ],
    namePrompt: 'Ihr Name',
    nameNote: 'Ihr Name wird nicht gespeichert: Die Stimmen tragen ein daraus abgeleitetes Pseudonym. Verwenden Sie denselben Namen, um später fortzufahren.',
    start: 'Beginnen',
    question: 'Frage',
    turn: 'Runde',
    firstTurn: 'Erste Runde (Kontext)',
    assistantA: 'Assistent A',
    assistantB: 'Assistent B',
    reference: 'Referenzlösung',
    aBetter: 'A ist besser',
    bBetter: 'B ist besser',
    tie: 'Unentschieden',
    bothBad: 'Beide schlecht',
    skip: 'Überspringen',
    voted: 'bisher abgegebene Stimmen',
    done: 'Vielen Dank: Es gibt nichts mehr für Sie zu bewerten.',
    offline: 'Der Server ist nicht erreichbar; Ihre Stimme wird gesendet, sobald er wieder verfügbar ist.',
    signedInAs: 'Bewerter/in',
    switchAnnotator: 'Bewerter/in wechseln',
    showInstructions: 'Anleitung',
  },
  FR: {
    title: 'MT-Bench-X : évaluation humaine',
    instructions: [
      'Vous verrez une question et les réponses de deux assistants d\'IA, A et B. Jugez quelle réponse est la meilleure : tenez compte de l\'utilité, de la pertinence, de l\'exactitude, de la profondeur, de la créativité et du niveau de détail, ainsi que du fait que la réponse soit rédigée dans la langue de la question.',
      'Chaque question comporte deux tours. Vous jugez d\'abord les réponses à la première question, puis la question de suivi, avec la conversation complète de chaque assistant. Ne jugez que le tour indiqué. L\'assistant affiché à gauche est tiré au sort à chaque tour : ne vous laissez pas influencer par la position.',
      'Lorsqu\'une solution de référence est affichée (mathématiques, raisonnement, programmation), utilisez-la pour vérifier l\'exactitude.',
      'Choisissez « A est meilleur » ou « B est meilleur », « Égalité » si les deux se valent, « Les deux sont mauvais » si aucune réponse n\'est acceptable, et « Passer » si vous ne pouvez pas juger cette question. Chaque vote est enregistré immédiatement ; vous pouvez vous arrêter à tout moment et reprendre plus tard sous le même nom.',
    ],
    namePrompt: 'Votre nom',
    nameNote: 'Votre nom n\'est pas enregistré : les votes portent un pseudonyme qui en est dérivé. Utilisez le même nom pour reprendre plus tard.',
    start: 'Commencer',
    question: 'Question',
    turn: 'Tour',
    firstTurn: 'Premier tour (contexte)',
    assistantA: 'Assistant A',
    assistantB: 'Assistant B',
    reference: 'Solution de référence',
    aBetter: 'A est meilleur',
    bBetter: 'B est meilleur',
    tie: 'Égalité',
    bothBad: 'Les deux sont mauvais',
    skip: 'Passer',
    voted: 'votes jusqu\'ici',
    done: 'Merci : il ne reste plus rien à juger pour vous.',
    offline: 'Le serveur est injoignable ; votre vote sera envoyé dès son retour.',
    signedInAs: 'Annotateur',
    switchAnnotator: 'Changer d\'annotateur',
    showInstructions: 'Instructions',
  },
  IT: {
    title: 'MT-Bench-X: valutazione umana',
    instructions: [
      'Vedrai una domanda e le risposte di due assistenti di IA, A e B. Giudica quale risposta è migliore: considera utilità, pertinenza, accuratezza, profondità, creatività e livello di dettaglio, e se la risposta è scritta nella lingua della domanda.',
      'Ogni domanda ha due turni. Prima giudichi le risposte alla prima domanda, poi la domanda successiva, con l\'intera conversazione di ciascun assistente. Giudica solo il turno indicato. L\'assistente mostrato a sinistra viene sorteggiato a ogni turno: non lasciarti influenzare dalla posizione.',
      'Quando è mostrata una soluzione di riferimento (matematica, ragionamento, programmazione), usala per verificare la correttezza.',
      'Scegli «A è migliore» o «B è migliore», «Pareggio» se sono ugualmente valide, «Entrambe scarse» se nessuna risposta è accettabile e «Salta» se non puoi giudicare questa domanda. Ogni voto viene salvato subito; puoi interrompere in qualsiasi momento e continuare più tardi con lo stesso nome.',
    ],
    namePrompt: 'Il tuo nome',
    nameNote: 'Il tuo nome non viene salvato: i voti riportano uno pseudonimo derivato da esso. Usa lo stesso nome per continuare più tardi.',
    start: 'Inizia',
    question: 'Domanda',
    turn: 'Turno',
    firstTurn: 'Primo turno (contesto)',
    assistantA: 'Assistente A',
    assistantB: 'Assistente B',
    reference: 'Soluzione di riferimento',
    aBetter: 'A è migliore',
    bBetter: 'B è migliore',
    tie: 'Pareggio',
    bothBad: 'Entrambe scarse',
    skip: 'Salta',
    voted: 'voti finora',
    done: 'Grazie: non c\'è più nulla da giudicare per te.',
    offline: 'Il server non è raggiungibile; il tuo voto verrà inviato non appena tornerà disponibile.',
    signedInAs: 'Annotatore',
    switchAnnotator: 'Cambia annotatore',
    showInstructions: 'Istruzioni',
  },
  ES: {
    title: 'MT-Bench-X: evaluación humana',
    instructions: [
      'Verá una pregunta y las respuestas de dos asistentes de IA, A y B. Juzgue qué respuesta es mejor: tenga en cuenta la utilidad, la pertinencia, la exactitud, la profundidad, la creatividad y el nivel de detalle, y si la respuesta está escrita en el idioma de la pregunta.',
      'Cada pregunta tiene dos turnos. Primero juzga las respuestas a la primera pregunta y después la pregunta de seguimiento, con la conversación completa de cada asistente. Juzgue solo el turno indicado. El asistente que aparece a la izquierda se sortea en cada turno: no se deje influir por la posición.',
      'Cuando se muestre una solución de referencia (matemáticas, razonamiento, programación), úsela para comprobar la exactitud.',
      'Elija «A es mejor» o «B es mejor», «Empate» si ambas son igual de buenas, «Ambas malas» si ninguna respuesta es aceptable y «Omitir» si no puede juzgar esta pregunta. Cada voto se guarda al instante; puede parar en cualquier momento y continuar más tarde con el mismo nombre.',
    ],
    namePrompt: 'Su nombre',
    nameNote: 'Su nombre no se guarda: los votos llevan un seudónimo derivado de él. Use el mismo nombre para continuar más tarde.',
    start: 'Empezar',
    question: 'Pregunta',
    turn: 'Turno',
    firstTurn: 'Primer turno (contexto)',
    assistantA: 'Asistente A',
    assistantB: 'Asistente B',
    reference: 'Solución de referencia',
    aBetter: 'A es mejor',
    bBetter: 'B es mejor',
    tie: 'Empate',
    bothBad: 'Ambas malas',
    skip: 'Omitir',
    voted: 'votos hasta ahora',
    done: 'Gracias: no queda nada más por juzgar.',
    offline: 'No se puede contactar con el servidor; su voto se enviará en cuanto vuelva a estar disponible.',
    signedInAs: 'Anotador/a',
    switchAnnotator: 'Cambiar de anotador/a',
    showInstructions: 'Instrucciones',
  },
};

export function uiStrings(lang: string): UiStrings {
  const s = UI_STRINGS[lang.toUpperCase() as UiLang];
  if (!s) throw new Error(`--lang ${lang}: the annotation page speaks ${Object.keys(UI_STRINGS).join(', ')}`);
  return s;
}
